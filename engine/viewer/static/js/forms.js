// A form from a job kind's parameter schema (pydantic JSON schema), so the export panel offers
// whatever deliverables and shapes formats the engine has, including kinds added later.

const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
};

// {type, enum, nullable} of a property, looking through anyOf [X, null].
function shape(prop) {
  let p = prop;
  let nullable = false;
  if (p.anyOf) {
    const others = p.anyOf.filter((x) => x.type !== 'null');
    nullable = others.length < p.anyOf.length;
    p = others.length === 1 ? others[0] : { type: 'string' };
  }
  return { type: p.type || (p.enum ? typeof p.enum[0] : 'string'), enum: p.enum || (p.const !== undefined ? [p.const] : null),
    items: p.items || null, nullable };
}

function labelOf(name) { return name.replace(/_/g, ' '); }

export function buildForm(form, schema, defaults = {}) {
  form.replaceChildren();
  const props = (schema && schema.properties) || {};
  const required = new Set((schema && schema.required) || []);
  const names = Object.keys(props);
  if (!names.length) {
    form.append(el('p', { className: 'hint', textContent: 'No parameters.' }));
    return;
  }
  for (const name of names) {
    const prop = props[name];
    const s = shape(prop);
    const def = defaults[name] !== undefined ? defaults[name] : prop.default;
    let input;
    if (s.enum) {
      input = el('select');
      if (s.nullable || def === undefined || def === null) input.append(el('option', { value: '', textContent: '(default)' }));
      for (const v of s.enum) input.append(el('option', { value: String(v), textContent: String(v) }));
      if (def !== undefined && def !== null) input.value = String(def);
    } else if (s.type === 'boolean') {
      input = el('input', { type: 'checkbox', checked: !!def });
    } else if (s.type === 'integer' || s.type === 'number') {
      input = el('input', { type: 'number', step: s.type === 'integer' ? '1' : 'any' });
      if (def !== undefined && def !== null) input.value = String(def);
    } else if (s.type === 'array') {
      input = el('input', { type: 'text', placeholder: name === 'frames' ? 'first-last' : 'comma separated' });
      if (Array.isArray(def)) input.value = name === 'frames' ? def.join('-') : def.join(', ');
    } else if (s.type === 'object') {
      continue;
    } else {
      input = el('input', { type: 'text' });
      if (def !== undefined && def !== null) input.value = String(def);
    }
    input.name = name;
    input.dataset.type = s.type;
    if (s.items && s.items.type) input.dataset.items = s.items.type;
    else if (s.items && s.items.anyOf) input.dataset.items = 'mixed';
    if (required.has(name)) input.required = true;
    const lab = el('label', { title: prop.description || prop.title || name }, labelOf(name) + (required.has(name) ? ' *' : ''), input);
    form.append(lab);
  }
}

// The parameters as the job expects them; throws an Error naming a bad field.
export function readForm(form) {
  const out = {};
  for (const input of form.querySelectorAll('input, select')) {
    const name = input.name;
    const type = input.dataset.type;
    if (input.type === 'checkbox') { out[name] = input.checked; continue; }
    const text = input.value.trim();
    if (!text) {
      if (input.required) throw new Error(`${labelOf(name)} is needed`);
      continue;
    }
    if (type === 'integer' || type === 'number') {
      const v = Number(text);
      if (!Number.isFinite(v)) throw new Error(`${labelOf(name)} must be a number`);
      out[name] = v;
    } else if (type === 'array') {
      let parts = text.split(',').map((x) => x.trim()).filter(Boolean);
      if (name === 'frames' && parts.length === 1 && /^-?\d+\s*-\s*-?\d+$/.test(text)) {
        const m = text.match(/^(-?\d+)\s*-\s*(-?\d+)$/);
        parts = [m[1], m[2]];
      }
      const items = input.dataset.items;
      out[name] = parts.map((x) => {
        if (items === 'integer' || items === 'number') {
          const v = Number(x);
          if (!Number.isFinite(v)) throw new Error(`${labelOf(name)}: ${x} is not a number`);
          return v;
        }
        if (items === 'mixed' && /^\d+$/.test(x)) return Number(x);
        return x;
      });
    } else if (input.tagName === 'SELECT' && /^-?\d+$/.test(text) && type !== 'string') {
      out[name] = Number(text);
    } else {
      out[name] = text;
    }
  }
  return out;
}
