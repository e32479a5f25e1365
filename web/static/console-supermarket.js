// The points supermarket (积分超市): the goods with their prices in morality points and their stock (the
// committee adds and changes goods); a redemption for one household, refused here when the household's
// balance or the stock is short, signed as the member's own points.redeem {household, amount: price x
// quantity, item: the good's name, quantity} and posted with the good's id, so that the ledger entry and
// the lower stock are written together; a printable receipt; and the month's redemptions with totals.
import { $, fill } from "./forms.js";

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/; // what the ledger's text fields refuse
const MAX_PRICE = 1_000_000; // ledger.entries.MAX_AMOUNT
const MAX_STOCK = 1_000_000; // api.schemas.console.MAX_STOCK
const MAX_QUANTITY = 1000; // points.redeem quantity: int[1, 1000]
const pad = (n) => String(n).padStart(2, "0");
const thisMonth = () => { const d = new Date(); return `${d.getFullYear()}-${pad(d.getMonth() + 1)}`; };
const localTime = (time) => {
  const d = new Date(time);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
const cell = (text) => { const td = document.createElement("td"); td.textContent = String(text); return td; };
const row = (...cells) => { const tr = document.createElement("tr"); tr.append(...cells); return tr; };

export async function mount(section, { session, say, strings }) {
  const committee = session.roles.includes("committee");
  const mayRedeem = session.roles.some((role) => role === "committee" || role === "grid_worker");
  const households = new Map(); // household id -> "number label", for the receipt and the report
  let goods = [];

  // --- goods ---------------------------------------------------------------------------------------------
  const goodForm = $(section, "#good-form");
  const name = $(section, "#good-name");
  const price = $(section, "#good-price");
  const stock = $(section, "#good-stock");
  let editing = null; // the good being changed, or null for a new one

  const showGoods = () => {
    $(section, "#goods").replaceChildren(...goods.map((good) => {
      const actions = document.createElement("td");
      if (committee) {
        const edit = document.createElement("button");
        edit.type = "button";
        edit.textContent = strings.edit;
        edit.addEventListener("click", () => startEditing(good));
        actions.append(edit);
      }
      const tr = row(cell(good.name), cell(good.price), cell(good.stock), actions);
      tr.dataset.item = good.item;
      return tr;
    }));
    const select = $(section, "#redeem-item");
    const chosen = select.value;
    select.replaceChildren(...goods.map((good) => {
      const option = new Option(fill(strings.option, { name: good.name, price: good.price, stock: good.stock }), good.item);
      option.disabled = good.stock < 1;
      return option;
    }));
    if (goods.some((good) => good.item === chosen)) select.value = chosen;
  };
  const loadGoods = async () => {
    goods = (await session.call("/supermarket")).items;
    showGoods();
  };
  const startEditing = (good) => {
    editing = good;
    $(section, "#good-legend").textContent = good ? fill(strings.editing, { name: good.name }) : strings.adding;
    name.value = good?.name ?? "";
    price.value = good?.price ?? "";
    stock.value = good?.stock ?? "";
    goodForm.querySelectorAll(".error").forEach((span) => { span.textContent = ""; });
    if (good) name.focus();
  };
  // A problem with a field is shown next to it and named by its label.
  const labelled = (input, problem) => {
    $(section, `#${input.id}-error`).textContent = problem;
    input.setAttribute("aria-invalid", String(Boolean(problem)));
    return problem ? `${$(section, `label[for=${input.id}]`).textContent}: ${problem}` : "";
  };
  const wholeNumber = (input, min, max) => {
    const value = Number(input.value);
    return input.value.trim() !== "" && Number.isInteger(value) && value >= min && value <= max
      ? "" : fill(strings.whole, { min, max });
  };
  const goodProblems = () => {
    const text = name.value.trim();
    let nameProblem = "";
    if (!text) nameProblem = strings.required;
    else if ([...text].length > 64) nameProblem = fill(strings.tooLong, { max: 64 });
    else if (CONTROL.test(text)) nameProblem = strings.control;
    else if (goods.some((good) => good.name === text && good.item !== editing?.item)) nameProblem = strings.nameTaken;
    return [labelled(name, nameProblem), labelled(price, wholeNumber(price, 1, MAX_PRICE)),
      labelled(stock, wholeNumber(stock, 0, MAX_STOCK))].filter(Boolean);
  };
  // A new good's id is for the shop's records only (entries name the good by its name): a random one
  // never overwrites another good, whatever the name is written in.
  const newItem = () => `item-${Array.from(crypto.getRandomValues(new Uint8Array(4)), (b) => pad(b.toString(16))).join("")}`;

  goodForm.hidden = !committee;
  $(section, "#good-new").addEventListener("click", () => startEditing(null));
  goodForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const problems = goodProblems();
      if (problems.length) throw new Error(problems.join(" "));
      const item = editing?.item ?? newItem();
      const saved = await session.call(`/supermarket/${item}`, {
        method: "PUT", json: { name: name.value.trim(), price: Number(price.value), stock: Number(stock.value) },
      });
      startEditing(null);
      await loadGoods();
      check();
      await loadReport();
      say(fill(strings.saved, { name: saved.name }));
    } catch (error) {
      say(error.message, true);
    }
  });

  // --- a redemption ------------------------------------------------------------------------------------
  const redeemForm = $(section, "#redeem-form");
  const quantity = $(section, "#redeem-quantity");
  const submit = $(section, "#redeem-submit");
  let household = null; // {household, number, label}
  let balance = 0;

  const selectedGood = () => goods.find((good) => good.item === $(section, "#redeem-item").value);
  const showHousehold = () => {
    $(section, "#redeem-household").textContent = household
      ? fill(strings.household, { household: households.get(household.household), balance }) : "";
  };
  const fetchBalance = async () => {
    balance = (await session.call(`/households/${household.household}`)).balances.morality;
    showHousehold();
  };
  /** What stops this redemption, or "": checked before anything is signed (the ledger checks again). */
  const problem = () => {
    const good = selectedGood();
    const count = Number(quantity.value);
    if (!household) return strings.noHousehold;
    if (!good) return strings.noGood;
    if (quantity.value.trim() === "" || !Number.isInteger(count) || count < 1 || count > MAX_QUANTITY) {
      return fill(strings.whole, { min: 1, max: MAX_QUANTITY });
    }
    if (count > good.stock) return fill(strings.stock, { stock: good.stock });
    if (good.price * count > balance) return fill(strings.short, { total: good.price * count, balance });
    return "";
  };
  const check = () => {
    const good = selectedGood();
    const count = Number(quantity.value);
    const found = problem();
    const total = good && Number.isInteger(count) ? good.price * count : null;
    $(section, "#redeem-total").textContent = household && total !== null && count > 0
      ? fill(strings.total, { total, after: balance - total }) : "";
    $(section, "#redeem-error").textContent = household ? found : "";
    quantity.setAttribute("aria-invalid", String(Boolean(household && found)));
    submit.disabled = Boolean(found);
    return found;
  };

  $(section, "#redeem-search").addEventListener("input", async (event) => {
    const list = $(section, "#redeem-results");
    const query = event.target.value.trim();
    try {
      const params = new URLSearchParams({ q: query, limit: 20 });
      const items = query ? (await session.call(`/households/search?${params}`)).items : [];
      if (query !== event.target.value.trim()) return; // a later keystroke has its own answer
      list.replaceChildren(...items.map((item) => {
        households.set(item.household, `${item.number} ${item.label ?? ""}`.trim());
        const li = document.createElement("li");
        const label = document.createElement("label");
        const radio = document.createElement("input");
        radio.type = "radio";
        radio.name = "redeem-household";
        radio.value = item.household;
        radio.checked = household?.household === item.household;
        radio.addEventListener("change", async () => {
          try {
            household = item;
            balance = 0;
            await fetchBalance();
            check();
          } catch (error) {
            say(error.message, true);
          }
        });
        label.append(radio, ` ${item.number} ${item.label ?? ""} ${item.name ?? ""}`);
        li.append(label);
        return li;
      }));
    } catch (error) {
      say(error.message, true);
    }
  });
  $(section, "#redeem-item").addEventListener("change", check);
  quantity.addEventListener("input", check);

  const showReceipt = (wire, answer, good) => {
    const body = wire.entry.body;
    const values = {
      village: strings.villageName, household: households.get(body.household), item: good.name,
      quantity: body.quantity, amount: body.amount, balance, date: localTime(wire.entry.time),
      member: session.member, index: answer.index, entry: answer.entry_id,
    };
    const receipt = $(section, "#receipt");
    for (const [field, value] of Object.entries(values)) $(receipt, `[data-field=${field}]`).textContent = String(value);
    receipt.hidden = false;
    receipt.scrollIntoView({ block: "nearest" });
  };
  $(section, "#print-receipt").addEventListener("click", () => window.print());

  redeemForm.hidden = !mayRedeem;
  $(section, "[data-role-note]").hidden = mayRedeem;
  redeemForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      // (1) the balance now (another member may have posted since), and every check again;
      // (2) sign the member's own points.redeem; (3) post it with the good: entry and stock together
      if (household) await fetchBalance(); // (1)
      const found = check();
      if (found) throw new Error(found);
      const good = selectedGood();
      const count = Number(quantity.value);
      say(strings.signing);
      const wire = await session.sign("points.redeem", { // (2)
        household: household.household, amount: good.price * count, item: good.name, quantity: count,
      });
      const answer = await session.call("/supermarket/redeem", { // (3)
        method: "POST", json: { item: good.item, entry: wire },
      });
      balance -= wire.entry.body.amount;
      quantity.value = "1";
      await loadGoods();
      await loadReport();
      showHousehold();
      showReceipt(wire, answer, good);
      say(fill(strings.redeemed, { index: answer.index }));
    } catch (error) {
      say(error.message, true);
    } finally {
      check();
    }
  });

  // --- the month's report ------------------------------------------------------------------------------
  const month = $(section, "#report-month");
  const named = async (ids) => {
    const missing = [...new Set(ids)].filter((id) => !households.has(id));
    await Promise.all(missing.map(async (id) => {
      const found = await session.call(`/households/${id}`);
      households.set(id, `${found.number} ${found.public.label ?? ""}`.trim());
    }));
  };
  const loadReport = async () => {
    if (!/^[0-9]{4}-(0[1-9]|1[0-2])$/.test(month.value)) return;
    const report = await session.call(`/supermarket/redemptions?month=${month.value}`);
    await named(report.items.map((item) => item.household));
    $(section, "#report-items tbody").replaceChildren(...report.items.map((item) => {
      const tr = row(cell(localTime(item.time)), cell(households.get(item.household)), cell(item.item), cell(item.quantity),
        cell(item.reversed ? `${item.amount} (${strings.reversed})` : item.amount));
      if (item.reversed) tr.className = "meta";
      return tr;
    }));
    // every good in the shop, and any good redeemed this month that is no longer called so
    const shelved = goods.map((good) => good.name);
    const names = [...shelved, ...Object.keys(report.totals).filter((goodName) => !shelved.includes(goodName))];
    $(section, "#report-totals tbody").replaceChildren(...names.map((goodName) => {
      const total = report.totals[goodName] ?? { quantity: 0, amount: 0 };
      const good = goods.find((g) => g.name === goodName);
      const tr = row(cell(goodName), cell(good ? good.stock : "—"), cell(total.quantity), cell(total.amount));
      tr.dataset.good = goodName;
      return tr;
    }));
    const sum = (key) => Object.values(report.totals).reduce((n, total) => n + total[key], 0);
    $(section, "[data-total=quantity]").textContent = String(sum("quantity"));
    $(section, "[data-total=amount]").textContent = String(sum("amount"));
  };
  month.value = thisMonth();
  month.addEventListener("change", () => loadReport().catch((error) => say(error.message, true)));

  await loadGoods();
  await loadReport();
  check();
}
