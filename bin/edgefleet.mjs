#!/usr/bin/env node
// The operator CLI ships as TypeScript and runs through tsx; no build step.
import { register } from 'tsx/esm/api';

register();
await import('../control-plane/cli/main.ts');
