// The one place the dashboard imports lit-html from (served by the control plane from node_modules, no CDN).
// Templates escape every interpolated value: there is no way to pass a string through as HTML here.
import { noChange, nothing } from '/ui/vendor/lit-html/lit-html.js';
import { Directive, PartType, directive } from '/ui/vendor/lit-html/directive.js';

export { html, svg, render, nothing } from '/ui/vendor/lit-html/lit-html.js';

/**
 * `style=${styleMap({ width: '40%' })}`, set through the CSSOM every time. lit-html's own styleMap writes a style
 * attribute on first render, which the CSP (style-src 'self', no inline style) refuses; properties set through
 * element.style are allowed.
 */
class CssomStyle extends Directive {
  constructor(part) {
    super(part);
    if (part.type !== PartType.ATTRIBUTE || part.name !== 'style' || part.strings?.length > 2) throw new Error('styleMap goes alone in a style attribute');
  }
  render() { return nothing; }
  update(part, [styles]) {
    const { style } = part.element;
    for (const name of this.previous ?? []) if (!(name in styles)) style.removeProperty(name);
    for (const [name, value] of Object.entries(styles)) style.setProperty(name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), String(value));
    this.previous = Object.keys(styles);
    return noChange;
  }
}
export const styleMap = directive(CssomStyle);
