// Small helpers shared by the console's sections: text, and form checks that name the field before
// anything is signed (the ledger still decides; these only spare a round trip).

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

/** The first element under `root` matching `selector`. */
export const $ = (root, selector) => root.querySelector(selector);

/** `text` with each {name} replaced by values[name] (taken literally: no "$&" patterns). */
export const fill = (text, values) => Object.entries(values).reduce((t, [k, v]) => t.replaceAll(`{${k}}`, () => v), text);

/** What is wrong with `value` as the ledger's text(max) (code points, no control characters, not blank), or null. */
export function textProblem(value, max, strings, { required = true } = {}) {
  if (!value.trim()) return required ? strings.required : null;
  if ([...value].length > max) return fill(strings.tooLong, { max });
  if (CONTROL.test(value)) return strings.control;
  return null;
}

/**
 * Show `problems` ({field: message or null}) beside their fields (the `[data-error=field]` spans of
 * `form`, each right after its field or fieldset), clearing the others; throw an Error naming the first
 * wrong field by its label, so that nothing is signed.
 */
export function report(form, problems) {
  let first = null;
  for (const span of form.querySelectorAll("[data-error]")) {
    const message = problems[span.dataset.error] || "";
    const input = span.previousElementSibling; // each error follows its field
    span.textContent = message;
    input.setAttribute("aria-invalid", String(Boolean(message)));
    if (message && !first) {
      const label = form.querySelector(`label[for="${input.id}"]`) ?? $(input, "legend"); // a field, or a fieldset
      first = `${label?.textContent.trim() || span.dataset.error}: ${message}`;
    }
  }
  if (first) throw new Error(first);
}
