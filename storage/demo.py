"""The demo village: a realistic, reproducible village (slug ``demo``) for newcomers and later features.

Built from the terms in shared/DOMAIN.md: grids with grid workers, ~200 households, a committee, the
supervision committee and an auditor; a points catalogue (morality bank and credit points); a year of
awards, deductions, redemptions at the points supermarket, a few corrections by reversal, and public
affairs (finances, projects, meeting decisions). Every entry is signed by the member who would post it,
under the checks and balances (rules 2): the township co-founds the village and appoints the supervision
committee, the auditor and the complaint desk; a supervisor approves every deduction rule.

The year is simulated: the store's clock follows the demo's (``Store.clocked``), one tick per event, so
every entry is dated when it is posted, as on a real server.

Member keys are written as encrypted key files to ``<instance>/demo-keys/<member>.key`` with the
passphrase ``DEMO_PASSPHRASE`` so that a newcomer can sign and post as a demo member.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import keys
from ledger.canonical import b64encode
from ledger.entries import Entry, make_unsigned, sign_entry, step_commitment
from ledger.kinds import CURRENT_RULES
from ledger.state import OVERSIGHT_SIDE

from . import complaints, supermarket
from .errors import NotFound
from .store import Store

SLUG = "demo"
ORIGIN_PREFIX = "villageledger.local"
DEMO_PASSPHRASE = b"demo-village-passphrase"
START = datetime(2025, 12, 1, 8, 0, 0, tzinfo=UTC)

GRIDS = [
    ("g1", "一组 上塘", "Group 1 Shangtang"), ("g2", "二组 下塘", "Group 2 Xiatang"),
    ("g3", "三组 竹园", "Group 3 Bamboo Garden"), ("g4", "四组 茶山", "Group 4 Tea Hill"),
    ("g5", "五组 溪口", "Group 5 Xikou"), ("g6", "六组 新村", "Group 6 New Village"),
    ("g7", "七组 桥头", "Group 7 Qiaotou"), ("g8", "八组 山背", "Group 8 Shanbei"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = ["建国", "秀英", "桂英", "志强", "丽娟", "海燕", "明华", "国平", "春梅", "永红", "德福", "金凤", "小平", "卫东", "玉兰", "文杰", "晓明", "红霞", "家豪", "雪梅"]

# code, zh, en, ledger, direction, amount or (min, max), evidence required
RULES: list[tuple[str, str, str, str, str, int | tuple[int, int], bool]] = [
    ("M-01", "垃圾分类到位", "Garbage sorted correctly", "morality", "award", (1, 5), False),
    ("M-02", "参加志愿服务", "Volunteer service", "morality", "award", (5, 20), False),
    ("M-03", "孝老爱亲", "Caring for elders and family", "morality", "award", 10, True),
    ("M-04", "美丽庭院", "Beautiful courtyard", "morality", "award", 10, True),
    ("M-05", "见义勇为", "Act of bravery", "morality", "award", 50, True),
    ("M-06", "参加村民会议", "Attended a villagers' meeting", "morality", "award", 2, False),
    ("M-07", "移风易俗 婚事新办", "Frugal wedding or funeral", "morality", "award", 20, True),
    ("D-01", "乱堆乱放", "Rubbish or materials piled in public space", "morality", "deduct", 5, False),
    ("D-02", "露天焚烧", "Open burning", "morality", "deduct", 10, True),
    ("D-03", "违章搭建", "Unauthorised construction", "morality", "deduct", (20, 50), True),
    ("D-04", "不赡养老人", "Failing to support elderly parents", "morality", "deduct", 30, True),
    ("C-01", "按时还贷", "Loan repaid on time", "credit", "award", 10, False),
    ("C-02", "诚信经营", "Honest business conduct", "credit", "award", (5, 20), True),
    ("C-03", "失信被执行", "Listed as a dishonest judgement debtor", "credit", "deduct", 50, True),
]
GOODS = [("洗衣粉", 10), ("食用油", 30), ("大米 5kg", 50), ("毛巾", 8), ("香皂", 5), ("酱油", 12), ("电饭煲", 200)]
GOOD_IDS = {"洗衣粉": "detergent", "食用油": "cooking-oil", "大米 5kg": "rice-5kg", "毛巾": "towel", "香皂": "soap",
            "酱油": "soy-sauce", "电饭煲": "rice-cooker"}
AWARD_REASONS = {
    "M-01": "垃圾分类检查优秀", "M-02": "参加村庄环境整治志愿活动", "M-03": "长期照顾卧床老人",
    "M-04": "庭院整洁获评美丽庭院", "M-05": "救助落水儿童", "M-06": "按时参加村民代表大会",
    "M-07": "婚事简办，不大操大办", "C-01": "农商银行贷款按期归还", "C-02": "农家乐诚信经营，无投诉",
}
DEDUCT_REASONS = {
    "D-01": "柴草堆放在公共道路旁", "D-02": "田间焚烧秸秆", "D-03": "未经审批搭建彩钢棚",
    "D-04": "拒不支付老人赡养费", "C-03": "被法院列入失信被执行人名单",
}


@dataclass
class DemoMember:
    id: str
    name: str
    roles: list[str]
    key: keys.SigningKey
    grid: str | None = None
    household: str | None = None


class _Clock:
    """Entry times spread over a year, always moving forward."""

    def __init__(self, rng: random.Random, total: int) -> None:
        self.rng, self.now = rng, START
        self.step = timedelta(days=350) / max(total, 1)

    def tick(self) -> str:
        self.now = (self.now + self.step * self.rng.uniform(0.5, 1.5)).replace(microsecond=0)
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def __call__(self) -> datetime:
        return self.now


def _fake_sha256(rng: random.Random) -> str:
    return hashlib.sha256(rng.randbytes(16)).hexdigest()


def build_demo(store: Store, key_folder: Path, *, households: int = 200, events: int = 3000, seed: int = 2026) -> bool:
    """Create the demo village unless it exists. Returns True if it was created."""
    try:
        store.village_id(SLUG)
        return False
    except NotFound:
        pass
    rng = random.Random(seed)
    clock = _Clock(rng, events + households + 60)
    with store.clocked(clock):
        _build(store, key_folder, clock, rng, households, events)
    return True


def _build(store: Store, key_folder: Path, clock: _Clock, rng: random.Random, households: int, events: int) -> None:
    members = _members(households)
    founder = members[0]
    township = next(m for m in members if "township" in m.roles)
    genesis = sign_entry(
        make_unsigned(
            kind="village.genesis", village=SLUG, author=founder.key.public_bytes, time=clock.tick(),
            cosigner=township.key.public_bytes,
            body={
                "name": "清风村", "name_en": "Qingfeng Village", "township": "新安江街道", "county": "建德市",
                "origin": f"{ORIGIN_PREFIX}/{SLUG}", "green_card_threshold": 100,
                "founder": founder.id, "founder_name": founder.name, "rules": CURRENT_RULES,
                "authority": {"member": township.id, "name": township.name, "key": b64encode(township.key.public_bytes)},
            },
        ),
        founder.key, township.key,
    )
    store.create_village(genesis)
    _save_keys(members, key_folder)
    poster = _Poster(store, clock)
    committee = [m for m in members if "committee" in m.roles]
    secretary = committee[0]
    supervisor = next(m for m in members if "supervisor" in m.roles)
    poster.batch(secretary, [("grid.define", {"grid": g, "name": zh, "name_en": en}) for g, zh, en in GRIDS])
    founded = {founder.id, township.id}
    poster.batch(secretary, [("member.add", _member_body(m)) for m in members
                             if m.id not in founded and m.household is None and not set(m.roles) & OVERSIGHT_SIDE])
    poster.batch(township, [("member.add", _member_body(m)) for m in members
                            if m.id not in founded and set(m.roles) & OVERSIGHT_SIDE])
    desk = {"member": "complaint-desk", "name": "投诉受理", "roles": ["intake"],
            "key": b64encode(complaints.desk_public_key(store, SLUG))}  # held by the server, not a person
    poster.batch(township, [("member.add", desk)])
    homes = _households(rng, households)
    for grid, _, _ in GRIDS:
        worker = next(m for m in members if m.grid == grid)
        poster.batch(worker, [("household.register", body) for body in homes if body["grid"] == grid])
    poster.batch(secretary, [("member.add", _member_body(m)) for m in members if m.household is not None])
    poster.batch(secretary, [("rule.publish", _rule_body(rule)) for rule in RULES if rule[4] == "award"])
    poster.batch(secretary, [("rule.publish", _rule_body(rule)) for rule in RULES if rule[4] == "deduct"], cosigner=supervisor)
    _affairs(poster, secretary, rng)
    _daily_life(poster, members, homes, rng, events)
    _complaints(poster, members, homes)
    for name, price in GOODS:  # the points supermarket's shelf (stock is operational data, off the log)
        supermarket.put_good(store, SLUG, GOOD_IDS[name], name=name, price=price, stock=20 if price < 100 else 3)


DEMO_COMPLAINTS = [
    ("finances", "村道硬化工程的支出明细没有公示，请村监会核查。"),
    ("environment", "河边有人倾倒建筑垃圾，已拍照。"),
    ("suggestion", "建议在文化礼堂旁增设老年人健身器材。"),
    ("cadre_conduct", "有村干部在低保评定中优亲厚友，请调查。"),
]


def _complaints(poster: _Poster, members: Sequence[DemoMember], homes: Sequence[dict[str, Any]]) -> None:
    """A few filed complaints (the desk signs their receipts); the supervision committee answers and
    closes the first, so the village page has figures and the console has cases in every state."""
    store, supervisor = poster.store, next(m for m in members if "supervisor" in m.roles)
    filed = []
    for n, (category, text) in enumerate(DEMO_COMPLAINTS):
        poster.clock.tick()
        filed.append(complaints.file_complaint(store, SLUG, category=category, text=text,
                                               household=homes[n * 7]["household"], now=poster.clock.now))
    handler = store.state(SLUG).members[supervisor.id]
    for step, reply in (("accept", None), ("reply", "已调取工程台账，支出明细将于本月 25 日在公开栏公示。"), ("close", None)):
        body: dict[str, Any] = {"receipt": filed[0].receipt, "step": step}
        salt = secrets.token_bytes(16) if reply else None
        if salt is not None:
            body["commitment"] = step_commitment(salt, {"receipt": filed[0].receipt, "step": step, "by": supervisor.id, "text": reply})
        signed = poster.sign(supervisor, "complaint.step", body)
        complaints.handler_step(store, SLUG, handler, signed, text=reply, salt=salt, now=poster.clock.now)
    complaints.villager_step(store, SLUG, filed[0].tracking_code, "rate", rating="satisfied", resolved=True,
                             now=poster.clock.now)


def _members(households: int) -> list[DemoMember]:
    people = [
        DemoMember("wang-jianguo", "王建国", ["committee"], keys.SigningKey.generate()),
        DemoMember("li-xiuying", "李秀英", ["committee"], keys.SigningKey.generate()),
        DemoMember("chen-zhiqiang", "陈志强", ["committee"], keys.SigningKey.generate(), household="h0007"),
        DemoMember("zhou-lan", "周兰", ["supervisor"], keys.SigningKey.generate()),
        DemoMember("xu-defu", "徐德福", ["supervisor"], keys.SigningKey.generate()),
        DemoMember("township-audit", "乡镇审计", ["auditor"], keys.SigningKey.generate()),
        DemoMember("township-liaison", "乡镇联村干部", ["township"], keys.SigningKey.generate()),
    ]
    workers = ["吴海燕", "孙明华", "朱国平", "高春梅", "林永红", "何金凤", "郭卫东", "罗玉兰"]
    for (grid, _, _), name in zip(GRIDS, workers):
        people.append(DemoMember(f"grid-{grid}", name, ["grid_worker"], keys.SigningKey.generate(), grid=grid))
    return people


def _save_keys(members: Sequence[DemoMember], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for member in members:
        keys.save_private_key(member.key, folder / f"{member.id}.key", DEMO_PASSPHRASE, overwrite=True)


def _member_body(member: DemoMember) -> dict[str, Any]:
    body: dict[str, Any] = {"member": member.id, "name": member.name, "roles": member.roles, "key": b64encode(member.key.public_bytes)}
    if member.grid:
        body["grid"] = member.grid
    if member.household:
        body["household"] = member.household
    return body


def _rule_body(rule: tuple[str, str, str, str, str, int | tuple[int, int], bool]) -> dict[str, Any]:
    code, zh, en, ledger, direction, amount, evidence = rule
    body: dict[str, Any] = {
        "rule": code, "title_zh": zh, "title_en": en, "ledger": ledger, "direction": direction, "evidence_required": evidence,
    }
    if isinstance(amount, tuple):
        body["min"], body["max"] = amount
    else:
        body["amount"] = amount
    return body


def _households(rng: random.Random, count: int) -> list[dict[str, Any]]:
    homes = []
    for n in range(1, count + 1):
        grid = GRIDS[(n - 1) * len(GRIDS) // count][0]
        surname = SURNAMES[rng.randrange(len(SURNAMES))]
        homes.append({
            "household": f"h{n:04d}", "grid": grid, "number": f"{grid[1:]}-{n:03d}",
            "public": {"label": f"{surname}家", "lead_household": n % 10 == 1},
            "commitment": _fake_sha256(rng),
        })
    return homes


class _Poster:
    """Signs and appends entries in batches, as a committee member would post one event at a time: the
    clock ticks once an event, and every entry of the event is dated then."""

    def __init__(self, store: Store, clock: _Clock) -> None:
        self.store, self.clock = store, clock

    def sign(self, author: DemoMember, kind: str, body: dict[str, Any], cosigner: DemoMember | None = None,
             *, time: str | None = None) -> Entry:
        unsigned = make_unsigned(
            kind=kind, village=SLUG, body=body, author=author.key.public_bytes,
            cosigner=cosigner.key.public_bytes if cosigner else None, time=time or self.clock.tick(),
        )
        return sign_entry(unsigned, author.key, cosigner.key if cosigner else None)

    def batch(self, author: DemoMember, items: Sequence[tuple[str, dict[str, Any]]],
              cosigner: DemoMember | None = None) -> list[Entry]:
        time = self.clock.tick()
        entries = [self.sign(author, kind, body, cosigner, time=time) for kind, body in items]
        for start in range(0, len(entries), 500):
            self.store.append(SLUG, entries[start : start + 500])
        return entries


def _affairs(poster: _Poster, author: DemoMember, rng: random.Random) -> None:
    items: list[tuple[str, dict[str, Any]]] = []
    for month in range(1, 12):
        date = f"2026-{month:02d}-05"
        items.append(("affair.publish", {
            "affair": f"fin-2026-{month:02d}-a", "category": "finance", "title": f"{month}月 村集体收入 土地租金",
            "text": "村集体土地流转租金收入，已入村集体账户。", "date": date,
            "finance": {"direction": "income", "amount_fen": rng.randrange(50_000, 300_000) * 100, "counterparty": "建德茶叶合作社"},
            "attachments": [{"name": f"receipt-{month}.jpg", "sha256": _fake_sha256(rng), "media_type": "image/jpeg", "size": 184_233}],
        }))
        items.append(("affair.publish", {
            "affair": f"fin-2026-{month:02d}-b", "category": "finance", "title": f"{month}月 保洁及垃圾清运费",
            "text": "村庄保洁员工资及垃圾清运费用。", "date": date,
            "finance": {"direction": "expense", "amount_fen": rng.randrange(8_000, 20_000) * 100, "counterparty": "新安江保洁服务队"},
        }))
    for progress, status in ((0, "planned"), (40, "ongoing"), (100, "done")):
        items.append(("affair.publish", {
            "affair": "proj-road-2026", "category": "project", "title": "上塘至茶山道路硬化工程",
            "text": "道路硬化1.2公里，含排水沟。", "date": f"2026-{3 + progress // 20:02d}-10",
            "project": {"budget_fen": 86_000_000, "contractor": "建德市路桥工程有限公司", "progress": progress, "status": status},
        }))
    items.append(("affair.publish", {
        "affair": "dec-2026-03", "category": "decision", "title": "村民代表大会 道德银行积分细则修订",
        "text": "讨论通过2026年道德银行积分细则。", "date": "2026-03-15",
        "decision": {"meeting": "村民代表大会", "outcome": "通过", "votes_for": 41, "votes_against": 2, "votes_abstain": 3},
    }))
    poster.batch(author, items)


def _daily_life(poster: _Poster, members: Sequence[DemoMember], homes: Sequence[dict[str, Any]], rng: random.Random, events: int) -> None:
    """Awards, deductions, redemptions and the odd correction, in batches of one event each."""
    committee = [m for m in members if "committee" in m.roles]
    supervisors = [m for m in members if "supervisor" in m.roles]
    workers = {m.grid: m for m in members if m.grid}
    grid_of = {h["household"]: h["grid"] for h in homes}
    balance = {h["household"]: 0 for h in homes}
    posted: list[Entry] = []
    morality = {r[0] for r in RULES if r[3] == "morality"}
    awards = [r for r in RULES if r[4] == "award"]
    deductions = [r for r in RULES if r[4] == "deduct"]
    remaining = events
    while remaining > 0:
        roll = rng.random()
        if roll < 0.08 and posted:
            target = posted.pop(rng.randrange(len(posted)))
            author = rng.choice(supervisors + committee[:2])
            poster.store.append(SLUG, [poster.sign(author, "points.reverse", {"entry": target.id, "reason": "经核实录入有误，予以更正"})])
            if target.kind == "points.award" and target.body["rule"] in morality:
                balance[target.body["household"]] -= target.body["amount"]
            remaining -= 1
            continue
        rule = rng.choice(awards if roll < 0.8 else deductions)
        code, _, _, _, direction, amount, evidence = rule
        group = rng.sample(list(balance), rng.randint(1, 12) if direction == "award" else 1)
        batch, time = [], poster.clock.tick()
        for household in group:
            value = amount if isinstance(amount, int) else rng.randint(*amount)
            body: dict[str, Any] = {
                "household": household, "rule": code, "amount": value,
                "reason": (AWARD_REASONS if direction == "award" else DEDUCT_REASONS).get(code, "按积分细则"),
            }
            if evidence:
                body["evidence"] = [_fake_sha256(rng)]
            author = workers[grid_of[household]] if rng.random() < 0.7 else committee[rng.randrange(2)]
            cosigner = None
            if household == committee[2].household:
                author, cosigner = committee[2], committee[0]  # own household: needs a committee cosignature
            entry = poster.sign(author, f"points.{direction}", body, cosigner, time=time)
            batch.append(entry)
            if code in morality:
                balance[household] += value if direction == "award" else -value
        poster.store.append(SLUG, batch)
        posted.extend(batch)
        remaining -= len(batch)
        rich = [h for h, b in balance.items() if b >= 10]
        if rich and rng.random() < 0.35:
            household = rng.choice(rich)
            item, price = rng.choice([g for g in GOODS if g[1] <= balance[household]])
            author = workers[grid_of[household]]
            poster.store.append(SLUG, [poster.sign(author, "points.redeem", {"household": household, "amount": price, "item": item, "quantity": 1})])
            balance[household] -= price
            remaining -= 1
