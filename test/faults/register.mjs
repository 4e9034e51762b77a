// `node --import ./test/faults/register.mjs test/faults/soak.ts`: runs the soak and the report
// straight from the TypeScript sources, with the same hooks jest's global setup uses.
import { registerTypeScriptHooks } from '../support/ts-loader.mjs';

registerTypeScriptHooks();
