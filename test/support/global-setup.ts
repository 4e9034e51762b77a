export default async function globalSetup(): Promise<void> {
  // Replaced by the local control plane start-up (issue 3).
}
