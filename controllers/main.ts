#!/usr/bin/env node
/**
 * The ts-kcm binary: lib's command line with the built-in controllers. This is the
 * composition root, so it lives on the controllers side of the controllers -> lib rule.
 */
import { main } from '../lib/cli/main.js';
import { builtinControllers } from './index.js';

// Exit explicitly: a finished command must not linger on a stray timer or socket.
process.exit(await main(process.argv.slice(2), builtinControllers));
