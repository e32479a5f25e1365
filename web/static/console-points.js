// Award or deduct points for one event: choose households (search by name or number, a whole grid, or a
// list of numbers), a rule from the catalogue, the points (held to the rule's bounds before anything is
// signed), a reason and evidence photos; one signed entry per household, posted as one batch (all or
// nothing). A grid worker's searches only return their grid, and the ledger refuses anything else.
import { $, fill, holdsPersonalData } from "./forms.js";

const MAX_BATCH = 1000;

export async function mount(section, { session, say, strings }) {
  const chosen = new Map(); // household id -> shown name
  const form = $(section, "#points-form");
  const zh = document.documentElement.lang.startsWith("zh");
  const { rules } = await session.call("/rules");
  const { items: grids } = await session.call("/grids");
  for (const grid of grids) $(section, "#grid-pick").append(new Option(zh ? grid.name : grid.name_en ?? grid.name, grid.grid));

  const showChosen = () => {
    $(section, "#chosen").textContent = fill(strings.chosen, { count: chosen.size });
  };
  const toggle = (item, on) => {
    if (on) chosen.set(item.household, `${item.number} ${item.label ?? ""}`.trim());
    else chosen.delete(item.household);
    showChosen();
  };
  const search = async (params) => (await session.call(`/households/search?${new URLSearchParams(params)}`)).items;

  $(section, "#household-search").addEventListener("input", async (event) => {
    const list = $(section, "#household-results");
    const query = event.target.value.trim();
    list.replaceChildren();
    if (!query) return;
    for (const item of await search({ q: query, limit: 20 })) {
      const li = document.createElement("li");
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = chosen.has(item.household);
      box.addEventListener("change", () => toggle(item, box.checked));
      label.append(box, ` ${item.number} ${item.label ?? ""} ${item.name ?? ""}`);
      li.append(label);
      list.append(li);
    }
  });
  $(section, "#grid-pick").addEventListener("change", async (event) => {
    if (!event.target.value) return;
    for (const item of await search({ grid: event.target.value, limit: 500 })) toggle(item, true);
  });

  const ruleSelect = $(section, "#rule");
  const amount = $(section, "#amount");
  const direction = () => form.querySelector("input[name=direction]:checked").value;
  const selectedRule = () => rules.find((rule) => rule.code === ruleSelect.value);
  const showRules = () => {
    ruleSelect.replaceChildren(...rules.filter((rule) => rule.direction === direction()).map((rule) =>
      new Option(`${rule.code} ${zh ? rule.title_zh : rule.title_en} (${rule.amount ?? `${rule.min}–${rule.max}`})`, rule.code)));
    showBounds();
  };
  const bounds = (rule) => (rule.amount != null ? [rule.amount, rule.amount] : [rule.min, rule.max]);
  const showBounds = () => {
    const rule = selectedRule();
    if (!rule) return;
    const [low, high] = bounds(rule);
    Object.assign(amount, { min: low, max: high, value: low, readOnly: low === high });
    checkAmount();
  };
  const checkAmount = () => {
    const rule = selectedRule();
    const [low, high] = rule ? bounds(rule) : [1, 1];
    const value = Number(amount.value);
    const ok = Number.isInteger(value) && value >= low && value <= high;
    $(section, "#amount-error").textContent = ok ? "" : fill(strings.bounds, { min: low, max: high });
    amount.setAttribute("aria-invalid", String(!ok));
    $(section, "#points-submit").disabled = !ok;
    return ok;
  };
  form.querySelectorAll("input[name=direction]").forEach((radio) => radio.addEventListener("change", showRules));
  ruleSelect.addEventListener("change", showBounds);
  amount.addEventListener("input", checkAmount);
  showRules();

  const fromList = async () => {
    const numbers = $(section, "#household-list").value.split(/[\s,，、]+/).filter(Boolean);
    if (!numbers.length) return;
    const all = await search({ limit: 500 });
    const unknown = [];
    for (const number of numbers) {
      const item = all.find((h) => h.number === number || h.household === number);
      if (item) toggle(item, true); else unknown.push(number);
    }
    if (unknown.length) throw new Error(fill(strings.unknown, { numbers: unknown.join(", ") }));
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await fromList();
      const rule = selectedRule();
      const reason = $(section, "#reason").value.trim();
      const photos = [...$(section, "#evidence").files];
      if (!chosen.size) throw new Error(strings.none);
      if (!checkAmount()) throw new Error($(section, "#amount-error").textContent);
      if (!reason) throw new Error(strings.reason);
      if (holdsPersonalData(reason)) throw new Error(strings.personal);
      if (rule.evidence_required && !photos.length) throw new Error(strings.evidence);
      say(strings.uploading);
      const evidence = [];
      for (const photo of photos) {
        const upload = new FormData();
        upload.append("file", photo);
        evidence.push((await session.call("/attachments", { method: "POST", form: upload })).sha256);
      }
      say(fill(strings.signing, { count: chosen.size }));
      const wires = [];
      for (const household of chosen.keys()) {
        const body = { household, rule: rule.code, amount: Number(amount.value), reason, ...(evidence.length ? { evidence } : {}) };
        wires.push(await session.sign(`points.${direction()}`, body));
      }
      if (wires.length > MAX_BATCH) throw new Error(`at most ${MAX_BATCH} households in one event`);
      const answer = await session.post(wires);
      const indexes = answer.appended.map((a) => a.index);
      say(fill(strings.posted, { count: wires.length, first: Math.min(...indexes), last: Math.max(...indexes) }));
      chosen.clear();
      showChosen();
      form.reset();
      showRules();
    } catch (error) {
      say(error.message, true);
    }
  });
  showChosen();
}
