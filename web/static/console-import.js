// Import an existing points spreadsheet (CSV or XLSX): the server previews it (POST /imports/preview) and
// writes nothing; the member sees which column feeds which field (changing one runs the preview again) and
// every row with its problems named by field. Then one entry per valid row is signed here, with a progress
// bar, and all of them are posted as ONE batch: all or nothing. Rows with problems are never posted.
import { $, fill } from "./forms.js";

const FIELDS = ["household", "rule", "amount", "reason"]; // storage.console.IMPORT_FIELDS

export async function mount(section, { session, say, strings }) {
  const form = $(section, "#import-form");
  const fileInput = $(section, "#import-file");
  const submit = $(section, "#import-submit");
  const progress = $(section, "#import-progress");
  const table = $(section, "#import-rows");
  const selects = Object.fromEntries(FIELDS.map((field) => [field, $(section, `#map-${field}`)]));
  let preview = null; // {kind, rows, ...} of the file as last checked
  let mapping = null; // the member's own choice of columns, once they change one
  let run = 0; // the latest preview asked for: an older answer arriving late is dropped
  let busy = false;

  const mayImport = session.roles.some((role) => role === "committee" || role === "grid_worker");
  form.hidden = !mayImport;
  $(section, "[data-role-note]").hidden = mayImport;
  if (!mayImport) return;

  const kind = () => form.querySelector("input[name=import-kind]:checked").value;
  const fieldLabel = (field) => (FIELDS.includes(field)
    ? $(section, `label[for=map-${field}]`).textContent : strings.row);
  const headers = [...table.tHead.rows[0].cells].map((th) => th.textContent);
  const pending = () => (preview ? preview.rows.filter((row) => !row.errors.length && row.index === undefined) : []);

  const showMapping = () => {
    for (const field of FIELDS) {
      const select = selects[field];
      const columns = preview.columns.map((column) => new Option(column, column));
      select.replaceChildren(new Option(strings.noColumn, ""), ...columns);
      select.value = preview.mapping[field] ?? "";
    }
    $(section, "#import-mapping").hidden = false;
  };
  // Each row as read, its cells marked where the ledger would refuse them, and its problems, named by field,
  // on a full-width line under it.
  const showRows = () => {
    const cell = (text, wrong = false) => {
      const td = document.createElement("td");
      td.textContent = text ?? "";
      if (wrong) td.className = "wrong";
      return td;
    };
    table.tBodies[0].replaceChildren(...preview.rows.flatMap((row) => {
      const wrong = new Set(row.errors.map((error) => error.field));
      const household = row.household && row.household !== row.number
        ? `${row.number ?? ""} → ${row.household}` : row.number;
      const state = row.errors.length ? "invalid" : row.index === undefined ? "valid" : "posted";
      const shown = { invalid: strings.invalid, valid: strings.ok, posted: fill(strings.recorded, { index: row.index }) };
      const check = cell(shown[state]);
      check.className = state === "invalid" ? "wrong" : "plus";
      const tr = document.createElement("tr");
      Object.assign(tr.dataset, { row: row.row, state });
      tr.append(cell(row.row), cell(household, wrong.has("household")), cell(row.rule, wrong.has("rule")),
        cell(row.amount, wrong.has("amount")), cell(row.reason, wrong.has("reason")), check);
      [...tr.cells].forEach((td, i) => { td.dataset.label = headers[i]; }); // a phone shows each cell with its header
      if (!row.errors.length) return [tr];
      const problems = document.createElement("td");
      problems.colSpan = 6;
      problems.className = "wrong";
      const list = document.createElement("ul");
      list.append(...row.errors.map((error) => {
        const li = document.createElement("li");
        li.textContent = `${fieldLabel(error.field)}: ${error.problem}`;
        return li;
      }));
      problems.append(list);
      const under = document.createElement("tr");
      under.dataset.problemsOf = row.row;
      under.append(problems);
      return [tr, under];
    }));
    table.hidden = false;
    $(section, "#import-summary").textContent = fill(strings.summary, {
      rows: preview.rows.length, valid: preview.valid, invalid: preview.invalid,
    });
    const count = pending().length;
    submit.textContent = fill(strings.post, { count });
    submit.disabled = busy || count === 0;
  };
  const clear = () => {
    preview = null;
    table.hidden = true;
    table.tBodies[0].replaceChildren();
    $(section, "#import-mapping").hidden = true;
    $(section, "#import-summary").textContent = "";
    submit.disabled = true;
  };

  /** Check the chosen file on the server, as `kind()` entries with the member's mapping if any. */
  const check = async () => {
    const file = fileInput.files[0];
    const mine = ++run;
    if (!file) return clear();
    const upload = new FormData();
    upload.append("file", file);
    upload.append("kind", kind());
    if (mapping) upload.append("mapping", JSON.stringify(mapping));
    submit.disabled = true;
    say(strings.checking);
    try {
      const answer = await session.call("/imports/preview", { method: "POST", form: upload });
      if (mine !== run) return;
      preview = { ...answer, kind: upload.get("kind") };
      showMapping();
      showRows();
      say($(section, "#import-summary").textContent, answer.invalid > 0);
    } catch (error) {
      if (mine !== run) return;
      clear();
      say(error.message, true);
    }
  };

  // Once rows are posted, the same file is not checked again (it would offer them again): choose a new file.
  const lock = (locked) => {
    form.querySelectorAll("input[name=import-kind]").forEach((radio) => { radio.disabled = locked; });
    for (const select of Object.values(selects)) select.disabled = locked;
  };
  fileInput.addEventListener("change", () => { mapping = null; lock(false); check(); });
  form.querySelectorAll("input[name=import-kind]").forEach((radio) => radio.addEventListener("change", check));
  for (const select of Object.values(selects)) {
    select.addEventListener("change", () => {
      mapping = Object.fromEntries(FIELDS.map((field) => [field, selects[field].value || null]));
      check();
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const rows = pending();
    if (busy || !rows.length) return;
    // (1) sign one entry per valid row, as the preview checked it, showing progress; (2) post them all as
    // one batch, all or nothing (the preview takes at most 1,000 rows, what POST /entries takes at once);
    // (3) mark the rows recorded: the rows with problems stay listed, unposted
    busy = true;
    submit.disabled = true;
    fileInput.disabled = true;
    lock(true); // the rows being signed are the rows posted
    const { kind: previewed } = preview;
    try {
      Object.assign(progress, { max: rows.length, value: 0, hidden: false });
      say(fill(strings.signing, { done: 0, count: rows.length }));
      const wires = [];
      for (const row of rows) { // (1)
        const body = { household: row.household, rule: row.rule, amount: row.amount, reason: row.reason };
        wires.push(await session.sign(previewed, body));
        progress.value = wires.length;
        say(fill(strings.signing, { done: wires.length, count: rows.length }));
      }
      say(fill(strings.posting, { count: wires.length }));
      const answer = await session.post(wires); // (2)
      answer.appended.forEach((appended, i) => { rows[i].index = appended.index; }); // (3)
      const indexes = answer.appended.map((appended) => appended.index);
      say(fill(strings.posted, { count: wires.length, first: Math.min(...indexes), last: Math.max(...indexes) }));
    } catch (error) {
      lock(false); // nothing was written: the member may fix the mapping or the file and try again
      say(error.message, true);
    } finally {
      busy = false;
      fileInput.disabled = false;
      showRows();
    }
  });
}
