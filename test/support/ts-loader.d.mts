/** Registers Node module hooks that resolve `.js` specifiers to `.ts` sources and compile them. */
export function registerTypeScriptHooks(): void;
