#!/usr/bin/env node
// The agent ships as TypeScript and runs through tsx; no build step.
import { register } from 'tsx/esm/api';

register();
await import('../agent/main.ts');
