/** Reported in births, heartbeats and enrollment requests (max 32 characters). */
export const AGENT_VERSION = '0.1.0';
