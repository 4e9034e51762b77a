/**
 * node:http, loaded through require. An ESM import of a builtin builds a namespace from every
 * export, and node:http's lazy `WebSocket`, `CloseEvent` and `MessageEvent` getters then load
 * Node's bundled undici: about 13 MB of resident memory for an API we never use (measured on
 * Node 24: 44 MB RSS after `require('node:http')`, 57 MB after `import('node:http')`).
 * Type-only imports from 'node:http' are erased and stay as they are.
 */
import type * as HttpModule from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The node:http module's values; take its types from `import type * as http from 'node:http'`. */
export const nodeHttp = require('node:http') as typeof HttpModule;
