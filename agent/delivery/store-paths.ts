import { resolve, sep } from 'node:path';
import { checkId, type IdKind } from '../../shared/ids.ts';

/** A path the agent was about to use lies outside its folder, or an id that names it breaks the id rule. */
export class PathEscapeError extends Error {
  override readonly name = 'PathEscapeError';
}

/**
 * `root/<id>/<rest...>` for an id that follows the one id rule, resolved and checked to stay strictly inside `root`
 * (issue 8 item 10: model id `..` put a model at `<stateDir>/7/`). The id rule already excludes `..`, `/` and a
 * leading dot; the prefix check is the second lock, for whatever the rule might miss.
 */
export function pathInside(root: string, kind: IdKind, id: string, ...rest: string[]): string {
  const c = checkId(kind, id);
  if (!c.ok) throw new PathEscapeError(c.error);
  const base = resolve(root);
  const p = resolve(base, id, ...rest);
  if (!p.startsWith(base + sep)) throw new PathEscapeError(`${kind} id ${JSON.stringify(id)} leads to ${p}, outside ${base}`);
  return p;
}
