/**
 * The Node.js flags the ts-kcm binary is meant to run with. A V8 flag cannot be set once the
 * process runs (v8.setFlagsFromString does not resize the young generation), so every way of
 * starting the binary that we ship passes them on node's command line: the Dockerfile's and
 * `npm run image`'s entrypoint, `npm start`, and the benchmark's spawn. node-flags.test.ts keeps
 * those in step with this list.
 *
 * --max-semi-space-size caps each of V8's two young-generation semi-spaces (in MiB). Left alone,
 * V8 grows them to 32 MiB each (64 MiB of new space) under a burst of writes and keeps them;
 * the objects in them are short-lived request and watch buffers, so a smaller new space costs
 * a few more scavenges and little else.
 *
 * --heap-growing-percent caps how far the old generation may grow past what the last full
 * collection left live before the next one: 50 % here. V8's own factor rises to 4× while a
 * process allocates fast, as a controller does while it writes, so 12 MB live became a 49 MB
 * heap before the second full collection of an N=2,000 ServiceCIDR run. (Go's default GOGC=100,
 * which kube-controller-manager runs with, is 100 %.) More full collections cost CPU, which
 * ts-kcm spends less of than kube-controller-manager; measured in docs/benchmarks.md
 * ("Node flags: young generation and heap growth").
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=8', '--heap-growing-percent=50'];
