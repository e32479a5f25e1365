// Public village affairs (阳光村务): publish a finance record, a project or a meeting decision, with its
// attachments (photos, PDFs) uploaded first and named in the entry by their SHA-256. A project's progress
// update is a new version of the same record (the same `affair` id). Every constraint of affair.publish
// (ledger/entries.py AffairPublish; docs/data-model.md §4.3) is checked here first, so a mistake is named by
// its field before anything is signed.
import { $, fill } from "./forms.js";

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/; // what the ledger's text fields refuse
const SAFE_FILENAME = /^(?!\.)[^/\\\x00-\x1f\x7f-\x9f]{1,128}$/u; // ledger.entries.SAFE_FILENAME, in code points
const SHA256 = /^[0-9a-f]{64}$/;
const MEDIA_TYPE = /^[a-z]+\/[a-z0-9.+-]{1,64}$/;
const MAX_ATTACHMENTS = 20;
const MAX_ATTACHMENT_SIZE = 50 * 1024 * 1024;
const MAX_FEN = 10 ** 13;
const MAX_VOTES = 100_000;
const pad = (n) => String(n).padStart(2, "0");
const today = () => { const d = new Date(); return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`; };
const hex = (count) => Array.from(crypto.getRandomValues(new Uint8Array(count)), (b) => pad(b.toString(16))).join("");

/** Fen (0.01 yuan) from an amount in yuan as people write it ("1234.5", "1,234.50", "１２３４元"), or null. */
function fen(written) {
  const text = written.normalize("NFKC").replace(/[\s,]/g, "").replace(/^¥/, "").replace(/元$/, "");
  const found = /^([0-9]{1,12})(?:\.([0-9]{1,2}))?$/.exec(text);
  return found ? Number(found[1]) * 100 + Number((found[2] ?? "").padEnd(2, "0")) : null;
}
const yuan = (amount) => `${Math.floor(amount / 100)}.${pad(amount % 100)}`;

export async function mount(section, { village, session, say, strings }) {
  const form = $(section, "#affair-form");
  const input = (id) => $(section, `#${id}`);
  const pick = input("affair-pick");
  const submit = input("affair-submit");
  const projects = new Map(); // affair id -> its latest version
  let attachments = []; // [{name, sha256, media_type, size}]
  let uploading = 0;

  const committee = session.roles.includes("committee");
  form.hidden = !committee;
  $(section, "[data-role-note]").hidden = committee;
  if (!committee) return;

  // --- the form ------------------------------------------------------------------------------------------
  const category = () => form.querySelector("input[name=category]:checked").value;
  const showCategory = () => {
    form.querySelectorAll("fieldset[data-category]").forEach((set) => { set.hidden = set.dataset.category !== category(); });
  };
  const clearProblems = () => form.querySelectorAll(".error").forEach((span) => { span.textContent = ""; });
  const showAttachments = () => {
    input("affair-attachments").replaceChildren(...attachments.map((file) => {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = `/api/v1/villages/${village}/attachments/${file.sha256}`;
      link.target = "_blank";
      link.textContent = file.name;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = strings.remove;
      remove.addEventListener("click", () => {
        attachments = attachments.filter((kept) => kept !== file);
        showAttachments();
      });
      li.append(link, ` (${file.media_type}, ${Math.max(1, Math.round(file.size / 1024))} KB) `, remove);
      return li;
    }));
  };
  const setFields = (record) => {
    input("affair-title").value = record?.title ?? "";
    input("affair-text").value = record?.text ?? "";
    input("affair-date").value = today();
    input("project-budget").value = record ? yuan(record.project.budget_fen) : "";
    input("project-contractor").value = record?.project.contractor ?? "";
    input("project-progress").value = record?.project.progress ?? 0;
    input("project-status").value = record?.project.status ?? "planned";
    attachments = record?.attachments ? record.attachments.map((file) => ({ ...file })) : [];
    showAttachments();
    clearProblems();
  };
  const startRecord = () => {
    const record = projects.get(pick.value) ?? null;
    form.reset();
    pick.value = record?.affair ?? "";
    if (record) form.querySelector("input[name=category][value=project]").checked = true;
    form.querySelectorAll("input[name=category]").forEach((radio) => { radio.disabled = Boolean(record); });
    setFields(record);
    showCategory();
  };
  const loadProjects = async () => {
    const { affairs } = await session.call("/affairs?category=project"); // newest first, every version
    projects.clear();
    for (const record of affairs) if (!projects.has(record.affair)) projects.set(record.affair, record);
    input("affair-projects").replaceChildren(...[...projects.values()].map((record) =>
      new Option(`${record.title} · ${record.project.progress}%`, record.affair)));
  };

  // --- checks: each problem is shown by its field and named by the field's label ---------------------------
  const labelOf = (id) => ($(section, `label[for=${id}]`) ?? $(input(id).closest("fieldset"), "legend")).textContent.trim();
  const collect = () => {
    const problems = [];
    const complain = (id, problem) => {
      if (!problem) return;
      input(`${id}-error`).textContent = problem;
      problems.push(`${labelOf(id)}: ${problem}`);
    };
    const text = (id, max, { optional = false } = {}) => {
      const value = input(id).value.trim();
      if (!value) complain(id, optional ? "" : strings.required);
      else if ([...value].length > max) complain(id, fill(strings.tooLong, { max }));
      else if (CONTROL.test(value)) complain(id, strings.control);
      return value || undefined;
    };
    const money = (id) => {
      const written = input(id).value;
      const amount = written.trim() ? fen(written) : null;
      if (!written.trim()) complain(id, strings.required);
      else if (amount === null) complain(id, strings.yuan);
      else if (amount > MAX_FEN) complain(id, fill(strings.yuanMax, { max: yuan(MAX_FEN) }));
      return amount;
    };
    const whole = (id, min, max, { optional = false } = {}) => {
      const written = input(id).value.trim();
      const value = Number(written);
      if (!written) complain(id, optional ? "" : strings.required);
      else if (!Number.isInteger(value) || value < min || value > max) complain(id, fill(strings.whole, { min, max }));
      return written ? value : undefined;
    };
    const date = input("affair-date").value;
    const real = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(date) && date >= "0001"
      && new Date(`${date}T00:00:00Z`).toISOString().startsWith(date);
    if (!real) complain("affair-date", date ? strings.date : strings.required);

    const kind = category();
    const body = {
      affair: pick.value || `${kind}-${today().replaceAll("-", "")}-${hex(3)}`, category: kind,
      title: text("affair-title", 100), text: text("affair-text", 5000), date,
    };
    if (kind === "finance") {
      const direction = form.querySelector("input[name=finance-direction]:checked")?.value;
      if (!direction) complain("finance-direction", strings.direction);
      body.finance = {
        direction, amount_fen: money("finance-amount"), counterparty: text("finance-counterparty", 64, { optional: true }),
      };
    } else if (kind === "project") {
      body.project = {
        budget_fen: money("project-budget"), contractor: text("project-contractor", 64),
        progress: whole("project-progress", 0, 100), status: input("project-status").value,
      };
    } else {
      body.decision = {
        meeting: text("decision-meeting", 64), outcome: text("decision-outcome", 500),
        votes_for: whole("decision-for", 0, MAX_VOTES, { optional: true }),
        votes_against: whole("decision-against", 0, MAX_VOTES, { optional: true }),
        votes_abstain: whole("decision-abstain", 0, MAX_VOTES, { optional: true }),
      };
    }
    if (attachments.length > MAX_ATTACHMENTS) complain("affair-files", fill(strings.tooMany, { max: MAX_ATTACHMENTS }));
    for (const file of attachments) {
      const wrong = [
        !SAFE_FILENAME.test(file.name) && "name", !SHA256.test(file.sha256) && "sha256",
        !MEDIA_TYPE.test(file.media_type) && "media_type",
        !(Number.isInteger(file.size) && file.size >= 0 && file.size <= MAX_ATTACHMENT_SIZE) && "size",
      ].filter(Boolean);
      if (wrong.length) {
        complain("affair-files", fill(strings.badAttachment, { name: file.name, problem: wrong.join(", ") }));
      }
    }
    if (attachments.length) {
      body.attachments = attachments.map(({ name, sha256, media_type, size }) => ({ name, sha256, media_type, size }));
    }
    // optional members that were left empty are left out: the ledger refuses nulls
    for (const detail of [body.finance, body.decision]) {
      for (const key of Object.keys(detail ?? {})) if (detail[key] === undefined) delete detail[key];
    }
    return { body, problems };
  };

  // --- events ---------------------------------------------------------------------------------------------
  form.querySelectorAll("input[name=category]").forEach((radio) => radio.addEventListener("change", showCategory));
  pick.addEventListener("change", startRecord);
  input("affair-files").addEventListener("change", async (event) => {
    const files = [...event.target.files];
    input("affair-files-error").textContent = "";
    uploading += 1;
    submit.disabled = true;
    try {
      for (const file of files) {
        if (attachments.length >= MAX_ATTACHMENTS) throw new Error(fill(strings.tooMany, { max: MAX_ATTACHMENTS }));
        say(fill(strings.uploading, { name: file.name }));
        const upload = new FormData();
        upload.append("file", file);
        const stored = await session.call("/attachments", { method: "POST", form: upload });
        if (!attachments.some((kept) => kept.sha256 === stored.sha256)) {
          attachments.push({ name: stored.name, sha256: stored.sha256, media_type: stored.media_type, size: stored.size });
        }
        showAttachments();
      }
      say(fill(strings.uploaded, { count: attachments.length }));
    } catch (error) {
      input("affair-files-error").textContent = error.message;
      say(`${labelOf("affair-files")}: ${error.message}`, true);
    } finally {
      event.target.value = "";
      uploading -= 1;
      submit.disabled = uploading > 0;
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (uploading) return;
    clearProblems();
    submit.disabled = true;
    try {
      const { body, problems } = collect();
      if (problems.length) throw new Error(fill(strings.fix, { problems: problems.join(" ") }));
      say(strings.signing);
      const answer = await session.post([await session.sign("affair.publish", body)]);
      await loadProjects();
      pick.value = "";
      startRecord();
      say(fill(strings.published, { index: answer.appended[0].index }));
    } catch (error) {
      say(error.message, true);
    } finally {
      submit.disabled = false;
    }
  });

  await loadProjects();
  startRecord();
}
