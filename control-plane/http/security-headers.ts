import type { MiddlewareHandler } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

/**
 * The Content-Security-Policy of every answer. Scripts and styles only from this origin (no inline script, no eval,
 * no inline style: dynamic styles go through the CSSOM), requests only back to this origin, never framed. Trusted
 * Types make the browser refuse any string written into innerHTML and the like: the dashboard renders through
 * lit-html (policy "lit-html"), which escapes every value by default.
 */
export const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  manifestSrc: ["'self'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  objectSrc: ["'none'"],
  requireTrustedTypesFor: ["'script'"],
  trustedTypes: ['lit-html'],
};

/** Security headers on every answer (API, dashboard, docs, errors): CSP, nosniff, no referrer, no framing. */
export function securityHeaders(): MiddlewareHandler {
  return secureHeaders({
    contentSecurityPolicy: CONTENT_SECURITY_POLICY,
    xFrameOptions: 'DENY',
    referrerPolicy: 'no-referrer',
    xContentTypeOptions: 'nosniff',
    crossOriginResourcePolicy: 'same-origin',
    crossOriginOpenerPolicy: 'same-origin',
    // plain HTTP on a LAN is the common deployment; HSTS would only matter behind a TLS proxy, which sets its own
    strictTransportSecurity: false,
  });
}
