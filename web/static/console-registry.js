// The registry: households (find, register, update), grids, members and their roles, members' keys (add,
// replace, revoke) and door plates (reissue one, print all). Every change is an entry signed here with the
// member's own key; a household's personal data (head, members, phone, address) never goes into an entry:
// it is kept first in the erasable register (POST .../households/{h}/private), which answers with the
// salted commitment the entry carries. Forms are checked against the entries' schemas (ledger/entries.py)
// before anything is signed; the ledger decides the rest (a grid worker only in their grid, the committee
// alone for grids, members and keys) and its refusal is shown as it comes. Data goes into the page as
// text only.
import { $, fill, report, textProblem } from "./forms.js";


const ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const PUBLIC_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/; // canonical base64 of 32 bytes
const PHONE = /^\+?[0-9][0-9 -]{2,19}$/; // api/views/registry.py PersonalData.phone
const ROLES = ["committee", "grid_worker", "supervisor", "township", "auditor", "intake"];
const MAX_HOUSEHOLD_MEMBERS = 30;

const element = (tag, text, className) => {
  const made = document.createElement(tag);
  if (text !== undefined) made.textContent = text;
  if (className) made.className = className;
  return made;
};

export async function mount(section, { village, session, say, strings }) {
  const zh = document.documentElement.lang.startsWith("zh");
  const committee = session.roles.includes("committee");
  const registrar = committee || session.roles.includes("grid_worker"); // who may register households
  for (const committeeOnly of section.querySelectorAll("[data-committee-only]")) committeeOnly.hidden = !committee;
  let grids = [];
  let members = [];
  const myGrid = () => members.find((member) => member.member === session.member)?.grid ?? "";

  /** Sign entries of [kind, body] and post them as one batch (all or nothing): their log indexes. */
  const post = async (...entries) => {
    const wires = [];
    for (const [kind, body] of entries) wires.push(await session.sign(kind, body));
    return (await session.post(wires)).appended.map((appended) => appended.index);
  };
  const onSubmit = (form, action) => form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await action(event);
    } catch (error) {
      say(error.message, true);
    }
  });

  // --- grids ---------------------------------------------------------------------------------------------

  const gridName = (grid) => `${grid.grid} ${zh ? grid.name : grid.name_en ?? grid.name}`;
  const showGrids = async () => {
    ({ items: grids } = await session.call("/grids"));
    $(section, "#reg-grids").replaceChildren(...grids.map((grid) => element("li", gridName(grid))));
    for (const select of section.querySelectorAll("#reg-household-grid, select.role-grid")) {
      const chosen = select.value || (select.id === "reg-household-grid" ? myGrid() : "");
      const blank = select.id === "reg-household-grid" ? [] : [new Option("—", "")];
      select.replaceChildren(...blank, ...grids.map((grid) => new Option(gridName(grid), grid.grid)));
      if (grids.some((grid) => grid.grid === chosen)) select.value = chosen;
    }
  };

  const gridForm = $(section, "#reg-grid-form");
  onSubmit(gridForm, async () => {
    const value = (selector) => $(section, selector).value.trim();
    const body = { grid: value("#reg-grid-id"), name: value("#reg-grid-name") };
    if (value("#reg-grid-name-en")) body.name_en = value("#reg-grid-name-en");
    report(gridForm, {
      grid: ID.test(body.grid) ? null : body.grid ? strings.id : strings.required,
      name: textProblem(body.name, 64, strings),
      name_en: textProblem(value("#reg-grid-name-en"), 64, strings, { required: false }),
    });
    say(strings.signing);
    const [index] = await post(["grid.define", body]);
    gridForm.reset();
    await showGrids();
    say(fill(strings.gridDefined, { grid: body.grid, index }));
  });

  // --- households ----------------------------------------------------------------------------------------

  const householdForm = $(section, "#reg-household-form");
  const list = $(section, "#reg-households");
  let editing = null; // the household being updated: its public record and personal data
  let searches = 0;

  const search = async () => {
    const ticket = ++searches;
    const q = $(section, "#reg-search").value.trim();
    const { items } = await session.call(`/households/search?${new URLSearchParams({ q, limit: 50 })}`);
    if (ticket === searches) list.replaceChildren(...items.map(householdItem));
  };
  const householdItem = (item) => {
    const li = element("li");
    li.dataset.household = item.household;
    li.append(element("p", `${item.number} ${item.label ?? ""}`.trim()));
    li.append(element("p", [item.name, gridName(grids.find((g) => g.grid === item.grid) ?? { grid: item.grid, name: "" })]
      .filter(Boolean).join(" · "), "meta"));
    const actions = element("p", undefined, "filter");
    const edit = element("button", strings.edit);
    edit.type = "button";
    edit.className = "edit";
    edit.addEventListener("click", () => startEditing(item.household).catch((error) => say(error.message, true)));
    actions.append(edit);
    if (committee) {
      const reissue = element("button", strings.reissue);
      reissue.type = "button";
      reissue.className = "reissue";
      reissue.addEventListener("click", () => reissuePlate(item).catch((error) => say(error.message, true)));
      actions.append(reissue);
    }
    li.append(actions);
    return li;
  };
  $(section, "#reg-search").addEventListener("input", () => search().catch((error) => say(error.message, true)));

  const field = (name) => $(section, `#reg-household-${name}`);
  const personal = (data) => JSON.stringify([data?.head ?? "", data?.members ?? [], data?.phone ?? "", data?.address ?? ""]);
  const publicFields = (fields) => JSON.stringify([fields?.label ?? "", fields?.group ?? "", Boolean(fields?.lead_household)]);

  const registering = () => {
    editing = null;
    householdForm.reset();
    field("id").readOnly = false;
    $(section, "#reg-household-heading").textContent = strings.registerHeading;
    field("submit").textContent = strings.registerButton;
    field("new").hidden = true;
    if (myGrid()) field("grid").value = myGrid();
    report(householdForm, {});
  };
  const startEditing = async (household) => {
    const record = await session.call(`/households/${household}`);
    let data = null;
    try {
      ({ data } = await session.call(`/households/${household}/private`));
    } catch {
      data = null; // never given, or erased
    }
    editing = { ...record, data };
    field("id").value = household;
    field("id").readOnly = true;
    field("grid").value = record.grid;
    field("number").value = record.number;
    field("label").value = record.public.label ?? "";
    field("group").value = record.public.group ?? "";
    field("lead").checked = Boolean(record.public.lead_household);
    field("head").value = data?.head ?? "";
    field("members").value = (data?.members ?? []).join("\n");
    field("phone").value = data?.phone ?? "";
    field("address").value = data?.address ?? "";
    $(section, "#reg-household-heading").textContent = fill(strings.updateHeading, { household });
    field("submit").textContent = strings.updateButton;
    field("new").hidden = false;
    report(householdForm, {});
    householdForm.scrollIntoView();
  };
  field("new").addEventListener("click", registering);

  /** {household, grid, number, public, data} from the form, or an Error naming the first wrong field. */
  const readHousehold = () => {
    const value = (name) => field(name).value.trim();
    const record = { household: value("id"), grid: field("grid").value, number: value("number"), public: {}, data: {} };
    if (value("label")) record.public.label = value("label");
    if (value("group")) record.public.group = value("group");
    if (field("lead").checked) record.public.lead_household = true;
    const names = field("members").value.split("\n").map((name) => name.trim()).filter(Boolean);
    for (const name of ["head", "phone", "address"]) if (value(name)) record.data[name] = value(name);
    if (names.length) record.data.members = names;
    const givesData = Object.keys(record.data).length > 0;
    report(householdForm, {
      household: ID.test(record.household) ? null : record.household ? strings.id : strings.required,
      grid: record.grid ? null : strings.required,
      number: textProblem(record.number, 32, strings),
      "public.label": textProblem(value("label"), 32, strings, { required: false }),
      "public.group": textProblem(value("group"), 32, strings, { required: false }),
      "data.head": textProblem(value("head"), 32, strings, { required: !editing || givesData, offLog: true }),
      "data.members": names.length > MAX_HOUSEHOLD_MEMBERS ? fill(strings.tooMany, { max: MAX_HOUSEHOLD_MEMBERS })
        : names.map((name) => textProblem(name, 32, strings, { offLog: true })).find(Boolean),
      "data.phone": value("phone") && !PHONE.test(value("phone")) ? strings.phone : null,
      "data.address": textProblem(value("address"), 200, strings, { required: false, offLog: true }),
    });
    return record;
  };

  /** Keep the personal data off the log; the commitment to sign into the entry. */
  const keepPersonalData = async (record) => {
    say(strings.storing);
    const path = `/households/${record.household}/private`;
    return (await session.call(path, { method: "POST", json: { data: record.data, grid: record.grid } })).commitment;
  };

  onSubmit(householdForm, async () => {
    const record = readHousehold();
    const { household } = record;
    if (!editing) {
      // Storing personal data replaces what is kept: never for a household that is already registered.
      const known = await fetch(`/api/v1/villages/${village}/households/${household}`);
      if (known.ok) report(householdForm, { household: strings.exists });
      const commitment = await keepPersonalData(record);
      say(strings.signing);
      const { grid, number } = record;
      const [index] = await post(["household.register", { household, grid, number, public: record.public, commitment }]);
      registering();
      say(fill(strings.registered, { household, index }));
    } else {
      const body = { household };
      if (record.grid !== editing.grid) body.grid = record.grid;
      if (record.number !== editing.number) body.number = record.number;
      if (publicFields(record.public) !== publicFields(editing.public)) body.public = record.public;
      if (personal(record.data) !== personal(editing.data)) body.commitment = await keepPersonalData(record);
      if (Object.keys(body).length === 1) throw new Error(strings.nothing);
      say(strings.signing);
      const [index] = await post(["household.update", body]);
      registering();
      say(fill(strings.updated, { household, index }));
    }
    await search();
  });

  // --- door plates -----------------------------------------------------------------------------------------

  const reissuePlate = async (item) => {
    if (!window.confirm(fill(strings.reissueConfirm, { number: item.number }))) return;
    const { url } = await session.call(`/households/${item.household}/plate`, { method: "POST" });
    const link = $(section, "#reg-plate-url");
    link.href = url;
    link.textContent = url;
    $(section, "#reg-plate").hidden = false;
    say(fill(strings.reissued, { number: item.number }));
  };

  $(section, "#reg-print-plates").addEventListener("click", async () => {
    try {
      say(strings.printing);
      const response = await session.call("/plates.pdf"); // a PDF: the Response itself
      const url = URL.createObjectURL(await response.blob());
      const link = element("a");
      link.href = url;
      link.download = `${village}-plates.pdf`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      say(strings.printed);
    } catch (error) {
      say(error.message, true);
    }
  });

  // --- members and roles ------------------------------------------------------------------------------------

  const roleNames = (roles) => roles.map((role) => strings[role] ?? role).join(zh ? "、" : ", ");
  const activeKeys = (member) => member.keys.filter((key) => key.revoked_at == null);
  const showMembers = async () => {
    ({ items: members } = await session.call("/members"));
    $(section, "#reg-members tbody").replaceChildren(...members.map((member) => {
      const row = element("tr");
      row.dataset.member = member.member;
      const cells = [member.member, member.name, roleNames(member.roles), member.grid ?? "", String(activeKeys(member).length)];
      for (const text of cells) row.append(element("td", text));
      return row;
    }));
    const options = () => members.map((member) => new Option(`${member.member} ${member.name}`, member.member));
    const roleMember = $(section, "#reg-role-member");
    const chosen = roleMember.value;
    roleMember.replaceChildren(...options());
    if (chosen) roleMember.value = chosen;
    showRoles();
    const keyMember = $(section, "#reg-key-member");
    const keyChosen = keyMember.value || session.member;
    keyMember.replaceChildren(...(committee ? options() : options().filter((option) => option.value === session.member)));
    keyMember.value = keyChosen;
    showKeys();
  };

  // Role checkboxes in both member forms; the grid applies to grid workers only.
  for (const fieldset of section.querySelectorAll("fieldset.roles")) {
    for (const role of ROLES) {
      const label = element("label");
      const box = element("input");
      Object.assign(box, { type: "checkbox", name: `${fieldset.closest("form").id}-role`, value: role });
      label.append(box, ` ${strings[role]}`);
      fieldset.append(label);
    }
  }
  const checkedRoles = (form) => [...form.querySelectorAll("fieldset.roles input:checked")].map((box) => box.value);
  const syncGrid = (form) => {
    const select = $(form, "select.role-grid");
    select.disabled = !checkedRoles(form).includes("grid_worker");
    if (select.disabled) select.value = "";
  };
  /** The roles (and grid) a member form gives, with the problems of its roles and grid fields. */
  const rolesOf = (form) => {
    const roles = checkedRoles(form);
    const grid = $(form, "select.role-grid").value;
    const problems = { grid: roles.includes("grid_worker") && !grid ? strings.gridNeeded : null };
    return { roles, ...(roles.includes("grid_worker") ? { grid } : {}), problems };
  };

  const memberForm = $(section, "#reg-member-form");
  memberForm.addEventListener("change", () => syncGrid(memberForm));
  onSubmit(memberForm, async () => {
    const value = (selector) => $(section, selector).value.trim();
    const { problems, ...roles } = rolesOf(memberForm);
    const body = { member: value("#reg-member-id"), name: value("#reg-member-name"), ...roles, key: value("#reg-member-key") };
    if (value("#reg-member-household")) body.household = value("#reg-member-household");
    report(memberForm, {
      member: ID.test(body.member) ? null : body.member ? strings.id : strings.required,
      name: textProblem(body.name, 32, strings),
      roles: roles.roles.length ? null : strings.roles,
      grid: problems.grid,
      household: body.household && !ID.test(body.household) ? strings.id : null,
      key: PUBLIC_KEY.test(body.key) ? null : body.key ? strings.key : strings.required,
    });
    say(strings.signing);
    const [index] = await post(["member.add", body]);
    memberForm.reset();
    syncGrid(memberForm);
    await showMembers();
    say(fill(strings.memberAdded, { member: body.member, index }));
  });

  const roleForm = $(section, "#reg-role-form");
  const showRoles = () => {
    const member = members.find((m) => m.member === $(section, "#reg-role-member").value);
    for (const box of roleForm.querySelectorAll("fieldset.roles input")) box.checked = Boolean(member?.roles.includes(box.value));
    $(section, "#reg-role-grid").value = member?.grid ?? "";
    syncGrid(roleForm);
  };
  $(section, "#reg-role-member").addEventListener("change", showRoles);
  roleForm.addEventListener("change", (event) => { if (event.target.type === "checkbox") syncGrid(roleForm); });
  onSubmit(roleForm, async () => {
    const member = $(section, "#reg-role-member").value;
    const { problems, ...roles } = rolesOf(roleForm);
    report(roleForm, { member: member ? null : strings.required, grid: problems.grid });
    say(strings.signing);
    const [index] = await post(["member.role", { member, ...roles }]);
    await showMembers();
    say(fill(strings.rolesChanged, { member, index }));
  });

  // --- keys ------------------------------------------------------------------------------------------------

  const keyForm = $(section, "#reg-key-form");
  const keyOwner = () => members.find((member) => member.member === $(section, "#reg-key-member").value);
  const showKeys = () => {
    const member = keyOwner();
    const keys = member?.keys ?? [];
    $(section, "#reg-key-list").replaceChildren(...keys.map((key) => {
      const state = key.revoked_at == null
        ? fill(strings.keyActive, { index: key.added_at }) : fill(strings.keyRevokedAt, { index: key.revoked_at });
      const li = element("li", `${key.key} · ${state}`);
      li.dataset.key = key.key;
      return li;
    }));
    const active = member ? activeKeys(member) : [];
    const option = (key) => new Option(`${key.key.slice(0, 12)}… (${key.added_at})`, key.key);
    $(section, "#reg-key-old").replaceChildren(...active.map(option));
  };
  $(section, "#reg-key-member").addEventListener("change", showKeys);

  onSubmit(keyForm, async (event) => {
    const action = event.submitter?.value ?? "revoke";
    const member = keyOwner()?.member;
    const old = $(section, "#reg-key-old").value;
    const fresh = $(section, "#reg-key-new").value.trim();
    const reason = $(section, "#reg-key-reason").value.trim();
    const needsNew = action !== "revoke";
    const needsOld = action !== "add";
    report(keyForm, {
      key: needsOld && !old ? strings.required : null,
      new_key: !needsNew ? null : !fresh ? strings.required : !PUBLIC_KEY.test(fresh) ? strings.key
        : needsOld && fresh === old ? strings.sameKey : null,
      reason: needsOld ? textProblem(reason, 200, strings) : null,
    });
    say(strings.signing);
    if (action === "add") {
      const [index] = await post(["key.add", { member, key: fresh }]);
      say(fill(strings.keyAdded, { member, index }));
    } else if (action === "rotate") {
      const [first, last] = await post(["key.add", { member, key: fresh }], ["key.revoke", { key: old, reason }]);
      say(fill(strings.keyRotated, { member, first, last }));
    } else {
      const [index] = await post(["key.revoke", { key: old, reason }]);
      say(fill(strings.keyRevoked, { member, index }));
    }
    keyForm.reset();
    $(section, "#reg-key-member").value = member;
    await showMembers();
  });

  for (const registrarOnly of [householdForm, $(section, "#reg-search").parentElement]) registrarOnly.hidden = !registrar;
  syncGrid(memberForm);
  await showGrids();
  await showMembers();
  registering();
  if (registrar) await search();
}
