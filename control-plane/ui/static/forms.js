// Forms that post to the API and show its validation messages next to the fields. A 400 answer's details are zod
// issues; each issue's path (e.g. ["waves", "then", "percents"]) names the field it belongs to.
import { ApiError, api } from './api.js';
import { html, nothing } from './lit.js';

/** Form state kept across re-renders: messages per field path, a general message, the last created thing. */
export function formState() {
  return { errors: {}, message: '', created: null, busy: false };
}

/** Messages per dotted path from a 400's details; the best field for each issue is the longest known prefix. */
export function fieldErrors(details, fields) {
  const out = {};
  for (const issue of Array.isArray(details) ? details : []) {
    const path = Array.isArray(issue.path) ? issue.path.map(String) : [];
    let key = '';
    for (let n = path.length; n > 0; n--) {
      const k = path.slice(0, n).join('.');
      if (fields.includes(k)) { key = k; break; }
    }
    out[key] = out[key] ? `${out[key]}; ${issue.message}` : issue.message;
  }
  return out;
}

/** The message slot after a field; `data-error-for` lets tests (and people) find it. */
export const errorFor = (state, field) => html`<span class="field-error" data-error-for=${field}>${state.errors[field] ?? ''}</span>`;
export const formMessage = (state) => (state.message ? html`<p class="error form-message" role="alert">${state.message}</p>` : nothing);

/**
 * Posts `build()`'s body to `path`; on 201/202 keeps the answer in state.created, on 400 puts each message next to
 * its field (fields: the dotted paths the form shows), otherwise a general message. Calls rerender after each step.
 */
export async function submit(state, { path, build, fields, rerender, method = 'POST' }) {
  state.busy = true;
  state.errors = {};
  state.message = '';
  rerender();
  try {
    let body;
    try {
      body = build();
    } catch (e) {
      // a field the page itself could not read (not a number...): named like the API would
      state.errors = { [e.field ?? '']: e.message };
      if (!e.field) state.message = e.message;
      return;
    }
    state.created = await api(path, { method, body });
  } catch (e) {
    if (e instanceof ApiError && e.status === 400) {
      state.errors = fieldErrors(e.details, fields);
      state.message = state.errors[''] ? e.message : 'Some fields need attention (see the messages next to them).';
    } else {
      state.message = e.message;
    }
  } finally {
    state.busy = false;
    rerender();
  }
}

/** A number field's value, or undefined when blank; a non-number is an error named after the field. */
export function numberField(form, name) {
  const raw = form.elements[name]?.value?.trim() ?? '';
  if (raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw Object.assign(new Error(`"${raw}" is not a number`), { field: name });
  return n;
}
