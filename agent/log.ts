/** The agent logs through the shared logger (shared/log.ts). */
export * from '../shared/log.ts';
