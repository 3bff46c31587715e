// Building the page without HTML strings: every value a user or the API gave becomes a
// text node or a property, never markup (an avatar named "<img src=x onerror=...>" shows
// those characters).

/** An element: props set attributes/properties/listeners; children are nodes or text. */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'testid') node.dataset.testid = value;
    else if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'value' || key === 'checked' || key === 'selected') node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  append(node, children);
  return node;
}

/** Append children (nodes, text, arrays of them; null and false are skipped). */
export function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

let nextId = 0;
/** A labelled control: the label points at the control by a fresh id. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = `f${++nextId}`;
  const parts = [h('label', { for: control.id }, labelText), control];
  if (hint) {
    const hintNode = h('small', { id: `${control.id}-hint`, class: 'hint' }, hint);
    control.setAttribute('aria-describedby', hintNode.id);
    parts.push(hintNode);
  }
  return h('div', { class: 'field' }, parts);
}

/** A <select> of [value, text] pairs. */
export function select(options, props = {}) {
  return h('select', props, options.map(([value, text]) => h('option', { value }, text)));
}

/** A table with these column heads around `tbody`; on a phone its rows stack, each cell
 * labelled with its column's head (kept on the cells as rows are added). */
export function dataTable(heads, tbody, headProps = () => ({})) {
  const label = () => {
    for (const tr of tbody.rows) {
      [...tr.cells].forEach((td, i) => { if (heads[i]) td.dataset.label = heads[i]; });
    }
  };
  new MutationObserver(label).observe(tbody, { childList: true });
  label();
  return h('div', { class: 'scroll' }, h('table', { class: 'stack' },
    h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col', ...headProps(t) }, t)))), tbody));
}

/** Seconds as "1.2 s", a time as the reader's local date and time. */
export const seconds = (s) => `${Number(s).toFixed(1)} s`;
export const when = (iso) => (iso ? new Date(iso).toLocaleString() : '');
