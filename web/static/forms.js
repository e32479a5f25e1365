// Small helpers shared by the console's sections: text, and form checks that name the field before
// anything is signed (the ledger still decides; these only spare a round trip).

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

/** The first element under `root` matching `selector`. */
export const $ = (root, selector) => root.querySelector(selector);

/** `text` with each {name} replaced by values[name] (taken literally: no "$&" patterns). */
export const fill = (text, values) => Object.entries(values).reduce((t, [k, v]) => t.replaceAll(`{${k}}`, () => v), text);

// Personal data never goes on the public log (ledger/personal.py: the same three tests).
const ID_CARD = /(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])/g;
const MOBILE = /(?<![0-9])1[3-9][0-9](?:[ -]?[0-9]){8}(?![0-9])/;
const CARD = /(?<![0-9])[0-9](?:[ -]?[0-9]){15,18}(?![0-9])/g;
const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

const idChecksumHolds = (id) =>
  "10X98765432"[ID_WEIGHTS.reduce((sum, weight, i) => sum + weight * Number(id[i]), 0) % 11] === id[17].toUpperCase();

function luhnHolds(digits) {
  let total = 0;
  [...digits].reverse().forEach((digit, position) => {
    const value = Number(digit) * (position % 2 ? 2 : 1);
    total += value > 9 ? value - 9 : value;
  });
  return total % 10 === 0;
}

/** Whether `text` holds an ID card number, a mobile phone number or a bank card number. */
export function holdsPersonalData(text) {
  return [...text.matchAll(ID_CARD)].some(([id]) => idChecksumHolds(id)) || MOBILE.test(text)
    || [...text.matchAll(CARD)].some(([card]) => luhnHolds(card.replace(/[ -]/g, "")));
}

/**
 * What is wrong with `value` as the ledger's text(max) (code points, no control characters, not blank, no
 * personal data unless it is kept `offLog`, in the erasable register), or null.
 */
export function textProblem(value, max, strings, { required = true, offLog = false } = {}) {
  if (!value.trim()) return required ? strings.required : null;
  if ([...value].length > max) return fill(strings.tooLong, { max });
  if (CONTROL.test(value)) return strings.control;
  if (!offLog && holdsPersonalData(value)) return strings.personal;
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
