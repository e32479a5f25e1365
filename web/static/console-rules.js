// The points rules catalogue (积分细则) and the village rules (村规民约). The committee publishes a rule or a
// new version of one (the version keeps the rule's ledger and direction), retires a rule with a reason,
// and publishes a new version of the village rules text (the affair "village-rules", a decision). Every
// form is checked here against the entry's schema (ledger/entries.py RulePublish, RuleRetire,
// AffairPublish) so that a mistake is named by its field before anything is signed; the ledger still
// decides, and its refusal is shown as it comes. Texts from the ledger go into the page as text only.
import { $, fill, report, textProblem } from "./forms.js";
import { cosign, importKeyFile, makeUnsigned, signEntry } from "./signer.js";

const VILLAGE_RULES = "village-rules"; // the affair id of the village rules text
const RULE_CODE = /^[A-Z0-9][A-Z0-9-]{0,31}$/;
const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
const MAX_AMOUNT = 1_000_000;
// A deduction rule takes effect only when a supervisor co-signs it (docs/data-model.md §6.4): the supervisor
// loads their key file into this form, for this one entry; the key is never stored.
// A deduction rule naming any of these is refused by the ledger (docs/data-model.md §4.3; ledger.state.SPEAKING_UP).
const SPEAKING_UP = ["投诉", "举报", "申诉", "信访", "上访", "告状", "反映问题",
  "complain", "appeal", "petition", "whistleblow"];

function amountProblem(value, strings) {
  const number = Number(value);
  return value !== "" && Number.isInteger(number) && number >= 1 && number <= MAX_AMOUNT ? null : strings.amount;
}

function today() {
  const now = new Date();
  return [now.getFullYear(), now.getMonth() + 1, now.getDate()].map((n) => String(n).padStart(2, "0")).join("-");
}

function realDate(value) {
  if (!DATE.test(value)) return false;
  const [year, month, day] = value.split("-").map(Number);
  const date = new Date(Date.UTC(year, month - 1, day));
  return year >= 1 && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

export async function mount(section, { session, say, strings }) {
  const zh = document.documentElement.lang.startsWith("zh");
  const committee = session.roles.includes("committee");
  const form = $(section, "#rules-form");
  const retireForm = $(section, "#rules-retire-form");
  const villageForm = $(section, "#village-rules-form");
  for (const committeeOnly of [form, retireForm, villageForm]) committeeOnly.hidden = !committee;
  let rules = [];

  // --- the catalogue ---------------------------------------------------------------------------------

  const bounds = (rule) => (rule.amount != null ? String(rule.amount) : `${rule.min}–${rule.max}`);
  const showRules = async () => {
    ({ rules } = await session.call("/rules"));
    const rows = rules.map((rule) => {
      const row = document.createElement("tr");
      row.dataset.rule = rule.code;
      const cells = [rule.code, rule.title_zh, rule.title_en, strings[rule.ledger], strings[rule.direction], bounds(rule),
        rule.evidence_required ? strings.yes : strings.no, String(rule.version)];
      for (const text of cells) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    });
    $(section, "#rules-table tbody").replaceChildren(...rows);
    const title = (rule) => `${rule.code} ${zh ? rule.title_zh : rule.title_en}`;
    const base = $(section, "#rules-base");
    const chosen = base.value;
    const versions = rules.map((rule) => new Option(fill(strings.newVersion, { rule: title(rule) }), rule.code));
    base.replaceChildren(base.options[0], ...versions);
    base.value = rules.some((rule) => rule.code === chosen) ? chosen : "";
    $(section, "#rules-retire-code").replaceChildren(...rules.map((rule) => new Option(title(rule), rule.code)));
  };

  // --- publishing a rule or a new version ---------------------------------------------------------------

  const radio = (name) => form.querySelector(`input[name=${name}]:checked`).value;
  const setRadio = (name, value) => { form.querySelector(`input[name=${name}][value=${value}]`).checked = true; };
  const showBounds = () => {
    const fixed = radio("rules-bounds") === "fixed";
    $(section, "#rules-fixed").hidden = !fixed;
    $(section, "#rules-range").hidden = fixed;
    $(section, "#rules-approval").hidden = radio("rules-direction") !== "deduct";
  };
  const chooseBase = () => {
    const rule = rules.find((r) => r.code === $(section, "#rules-base").value);
    const code = $(section, "#rules-code");
    code.readOnly = Boolean(rule);
    for (const name of ["rules-ledger", "rules-direction"]) {
      form.querySelectorAll(`input[name=${name}]`).forEach((input) => { input.disabled = Boolean(rule); });
    }
    $(section, "#rules-kept").hidden = !rule;
    report(form, {}); // what was wrong before no longer applies
    if (!rule) {
      form.reset();
      showBounds();
      return;
    }
    code.value = rule.code;
    $(section, "#rules-title-zh").value = rule.title_zh;
    $(section, "#rules-title-en").value = rule.title_en;
    setRadio("rules-ledger", rule.ledger);
    setRadio("rules-direction", rule.direction);
    setRadio("rules-bounds", rule.amount != null ? "fixed" : "range");
    $(section, "#rules-amount").value = rule.amount ?? "";
    $(section, "#rules-min").value = rule.min ?? "";
    $(section, "#rules-max").value = rule.max ?? "";
    $(section, "#rules-evidence").checked = rule.evidence_required;
    $(section, "#rules-description").value = rule.description ?? "";
    showBounds();
  };
  $(section, "#rules-base").addEventListener("change", chooseBase);
  form.querySelectorAll("input[name=rules-bounds], input[name=rules-direction]")
    .forEach((input) => input.addEventListener("change", showBounds));

  /** The rule.publish body the form describes, or an Error naming the first wrong field. */
  const publishBody = () => {
    const value = (selector) => $(section, selector).value;
    const base = value("#rules-base");
    const body = {
      rule: value("#rules-code").trim(), title_zh: value("#rules-title-zh").trim(), title_en: value("#rules-title-en").trim(),
      ledger: radio("rules-ledger"), direction: radio("rules-direction"), evidence_required: $(section, "#rules-evidence").checked,
    };
    const description = value("#rules-description").trim();
    if (description) body.description = description;
    const problems = {};
    if (!RULE_CODE.test(body.rule)) problems.rule = body.rule ? strings.code : strings.required;
    else if (!base && rules.some((rule) => rule.code === body.rule)) problems.rule = strings.codeExists;
    for (const [field, max] of [["title_zh", 64], ["title_en", 96]]) {
      const problem = textProblem(body[field], max, strings);
      if (problem) problems[field] = problem;
    }
    const problem = textProblem(description, 1000, strings, { required: false });
    if (problem) problems.description = problem;
    if (radio("rules-bounds") === "fixed") {
      problems.amount = amountProblem(value("#rules-amount"), strings);
      body.amount = Number(value("#rules-amount"));
    } else {
      problems.min = amountProblem(value("#rules-min"), strings);
      problems.max = amountProblem(value("#rules-max"), strings);
      Object.assign(body, { min: Number(value("#rules-min")), max: Number(value("#rules-max")) });
      if (!problems.min && !problems.max && body.min > body.max) problems.min = strings.minMax;
    }
    if (body.direction === "deduct") {
      for (const [field, text] of [["title_zh", body.title_zh], ["title_en", body.title_en], ["description", description]]) {
        const word = SPEAKING_UP.find((w) => text.toLowerCase().includes(w));
        if (word) problems[field] ??= fill(strings.speakingUp, { word });
      }
    }
    report(form, problems);
    return body;
  };

  const posted = async (kind, body) => (await session.post([await session.sign(kind, body)])).appended[0].index;

  /** A deduction rule signed by the member and co-signed by the supervisor whose key file is in the form. */
  const approved = async (body) => {
    const file = $(section, "#rules-approver-file").files[0];
    const passphrase = $(section, "#rules-approver-passphrase");
    if (!file || !passphrase.value) {
      report(form, { approver: strings.approver });
      throw new Error(strings.approver);
    }
    try {
      const approver = await importKeyFile(await file.text(), passphrase.value);
      const { key } = session;
      const unsigned = makeUnsigned({ kind: "rule.publish", village: session.village, body, author: key.publicKey,
        cosigner: approver.publicKey });
      const wire = await cosign(await signEntry(unsigned, key.privateKey, key.publicKey), approver.privateKey, approver.publicKey);
      return (await session.post([wire])).appended[0].index;
    } finally {
      passphrase.value = "";
      $(section, "#rules-approver-file").value = "";
    }
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const body = publishBody();
      say(strings.signing);
      const index = body.direction === "deduct" ? await approved(body) : await posted("rule.publish", body);
      await showRules();
      const version = rules.find((rule) => rule.code === body.rule)?.version ?? "";
      say(fill(strings.published, { rule: body.rule, version, index }));
      $(section, "#rules-base").value = "";
      chooseBase();
    } catch (error) {
      say(error.message, true);
    }
  });

  retireForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const rule = $(section, "#rules-retire-code").value;
      const reason = $(section, "#rules-retire-reason").value.trim();
      const problems = { rule: rule ? null : strings.required, reason: textProblem(reason, 200, strings) };
      report(retireForm, problems);
      say(strings.signing);
      const index = await posted("rule.retire", { rule, reason });
      retireForm.reset();
      await showRules();
      say(fill(strings.retired, { rule, index }));
    } catch (error) {
      say(error.message, true);
    }
  });

  // --- the village rules (村规民约) ------------------------------------------------------------------------

  const showVillageRules = async () => {
    const { affairs } = await session.call("/affairs?category=decision");
    const latest = affairs.find((affair) => affair.affair === VILLAGE_RULES); // newest first
    $(section, "#village-rules-none").hidden = Boolean(latest);
    for (const id of ["#village-rules-title", "#village-rules-meta"]) $(section, id).hidden = !latest;
    $(section, "#village-rules-title").textContent = latest?.title ?? "";
    $(section, "#village-rules-meta").textContent = latest
      ? fill(strings.adopted, { date: latest.date, meeting: latest.decision.meeting, outcome: latest.decision.outcome }) : "";
    $(section, "#village-rules-text").textContent = latest?.text ?? "";
    if (latest) {
      $(section, "#village-rules-new-title").value = latest.title;
      $(section, "#village-rules-new-text").value = latest.text;
    }
    $(section, "#village-rules-date").value = today();
  };

  villageForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const value = (selector) => $(section, selector).value.trim();
      const body = {
        affair: VILLAGE_RULES, category: "decision",
        title: value("#village-rules-new-title"), text: value("#village-rules-new-text"), date: value("#village-rules-date"),
        decision: { meeting: value("#village-rules-meeting"), outcome: value("#village-rules-outcome") },
      };
      const problems = {
        title: textProblem(body.title, 100, strings), text: textProblem(body.text, 5000, strings),
        date: realDate(body.date) ? null : strings.date,
        "decision.meeting": textProblem(body.decision.meeting, 64, strings),
        "decision.outcome": textProblem(body.decision.outcome, 500, strings),
      };
      report(villageForm, problems);
      say(strings.signing);
      const index = await posted("affair.publish", body);
      await showVillageRules();
      $(section, "#village-rules-meeting").value = "";
      $(section, "#village-rules-outcome").value = "";
      say(fill(strings.villagePublished, { index }));
    } catch (error) {
      say(error.message, true);
    }
  });

  await showRules();
  chooseBase();
  await showVillageRules();
}
