"""Door plates: every household's QR code holds an unguessable URL that works until the plate is reissued,
and the printed sheet is what a phone at the door will read.

The rendering tests look at the PDF as a person and a phone would: ``pdftoppm`` renders each page,
``zbarimg`` decodes the QR code in every plate's cell, ``pdffonts`` and ``pdftotext`` check the Chinese
is drawn in an embedded font. Without those tools (Debian's poppler-utils and zbar-tools) or the CJK
font (fonts-wqy-microhei) they skip, except under CI, where they fail.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from xml.etree import ElementTree

import pytest
from ci import missing_tool
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from kit import Kit, StoredVillage
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

import keys
from cli import main
from storage import NotFound, Store, plates
from storage import models as m
from storage.db import read_session, write_session

BASE = "https://cun.example.cn/ledger"
DPI = 150
ZBAR = "{http://zbar.sourceforge.net/2008/barcode}"


def required(tool: str) -> str:
    """The path of a command-line tool the rendering tests need; skips without it, fails under CI."""
    path = shutil.which(tool)
    if path is None:
        reason = f"{tool} is missing: apt-get install poppler-utils zbar-tools"
        missing_tool("door-plate rendering tests", reason)
    return path


@pytest.fixture
def font() -> str:
    try:
        return plates.cjk_font()
    except plates.PlateError as exc:
        missing_tool("door-plate tests", str(exc))


@pytest.fixture
def seven(village: StoredVillage) -> StoredVillage:
    """The test village with seven households (h1..h7, grids g1 and g2): two pages of plates."""
    village.append(*[village.kit.sign("household.register", Kit.household_body(f"h{n}", grid))
                     for n, grid in ((4, "g2"), (5, "g1"), (6, "g2"), (7, "g1"))])
    return village


def url_of(village: StoredVillage, household: str) -> str:
    return plates.plate_url(BASE, plates.token_for(village.store, village.slug, household))


def door_tokens(store: Store) -> list[m.DoorToken]:
    with read_session(store.engine) as session:
        return list(session.execute(select(m.DoorToken).order_by(m.DoorToken.id)).scalars())


# --- tokens ------------------------------------------------------------------------------------------------


def test_a_token_is_128_random_bits_in_no_relation_to_the_household(village: StoredVillage) -> None:
    tokens = {h: plates.token_for(village.store, village.slug, h) for h in ("h1", "h2", "h3")}
    for token in tokens.values():
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", token), token
        assert len(base64.urlsafe_b64decode(token + "==")) == 16
    # No relation: one household's 41 tokens (h1 and 40 reissues) are all different, and the bits look random.
    reissued = [plates.reissue(village.store, village.slug, "h1") for _ in range(40)]
    everything = [*tokens.values(), *reissued]
    assert len(set(everything)) == len(everything)
    # 43 tokens of 128 bits: about half of all bits set, and most of the 64 base64url symbols in use.
    bits = sum(int.from_bytes(base64.urlsafe_b64decode(t + "=="), "big").bit_count() for t in everything)
    assert 0.45 < bits / (128 * len(everything)) < 0.55
    assert len(set("".join(everything))) > 55


def test_a_token_is_stable_until_the_plate_is_reissued(village: StoredVillage, make_store: Callable[[], Store]) -> None:
    first = plates.token_for(village.store, village.slug, "h2")
    assert plates.token_for(village.store, village.slug, "h2") == first
    another_server = make_store()
    assert plates.token_for(another_server, village.slug, "h2") == first
    sheet = plates.plate_sheet(village.store, village.slug)
    assert {p.household: p.token for p in sheet.plates}["h2"] == first
    assert len(door_tokens(village.store)) == 3  # printing issued h1's and h3's; h2 kept its own


def test_a_reissued_plate_works_at_once_and_the_old_one_says_it_was_replaced(village: StoredVillage) -> None:
    old = plates.token_for(village.store, village.slug, "h2")
    new = plates.reissue(village.store, village.slug, "h2")
    assert new != old
    assert plates.resolve(village.store, new) == (village.slug, "h2")
    with pytest.raises(plates.PlateReplaced, match=r"this door plate was replaced on \d{4}-\d\d-\d\d") as replaced:
        plates.resolve(village.store, old)
    assert (replaced.value.slug, replaced.value.household) == (village.slug, "h2")
    assert plates.token_for(village.store, village.slug, "h2") == new
    assert plates.resolve(village.store, plates.token_for(village.store, village.slug, "h1")) == (village.slug, "h1")


def test_resolve_tells_an_unknown_plate_from_a_replaced_one(village: StoredVillage) -> None:
    plates.token_for(village.store, village.slug, "h1")
    for token in ("A" * 22, "h1", "../../etc/passwd", "", "é" * 22):
        with pytest.raises(plates.UnknownPlate, match="no door plate has this code") as unknown:
            plates.resolve(village.store, token)
        assert not isinstance(unknown.value, plates.PlateReplaced)
        assert isinstance(unknown.value, NotFound)  # the API answers 404


def test_tokens_are_refused_for_unknown_villages_and_households(village: StoredVillage) -> None:
    with pytest.raises(NotFound, match="no village 'nowhere'"):
        plates.token_for(village.store, "nowhere", "h1")
    with pytest.raises(NotFound, match="no household 'h99'"):
        plates.token_for(village.store, village.slug, "h99")
    with pytest.raises(NotFound, match="no household 'h99'"):
        plates.reissue(village.store, village.slug, "h99")
    with pytest.raises(NotFound, match="no household 'h98', 'h99'"):
        plates.plate_sheet(village.store, village.slug, ["h1", "h98", "h99"])
    assert door_tokens(village.store) == []  # all or nothing: h1 got no token either


def test_the_database_allows_one_active_token_per_household(village: StoredVillage) -> None:
    plates.token_for(village.store, village.slug, "h1")
    village_id = village.store.village_id(village.slug)
    with pytest.raises(IntegrityError), write_session(village.store.engine) as session:
        session.add(m.DoorToken(village_id=village_id, token="B" * 22, household_id="h1", issued="2026-01-01T00:00:00Z"))
        session.flush()
    with write_session(village.store.engine) as session:  # a revoked one beside the active one is fine
        session.add(m.DoorToken(village_id=village_id, token="C" * 22, household_id="h1", issued="2026-01-01T00:00:00Z",
                                revoked="2026-01-02T00:00:00Z"))


def test_tokens_stay_off_the_signed_log_and_survive_a_rebuild(village: StoredVillage) -> None:
    token = plates.token_for(village.store, village.slug, "h3")
    village.store.rebuild(village.slug)
    assert plates.resolve(village.store, token) == (village.slug, "h3")
    assert token.encode() not in b"".join(village.store.export(village.slug))
    with read_session(village.store.engine) as session:
        assert session.execute(select(func.count()).select_from(m.EntryRow)).scalar_one() == village.size()


def test_the_url_is_the_public_base_and_the_token() -> None:
    assert plates.plate_url("https://cun.example.cn/ledger/", "tok") == "https://cun.example.cn/ledger/h/tok"
    assert plates.plate_url("http://127.0.0.1:5000", "tok") == "http://127.0.0.1:5000/h/tok"
    for bad in ("cun.example.cn", "ftp://cun.example.cn", "https://cun.example.cn/?a=1", "https://x/#top", "https://"):
        with pytest.raises(plates.PlateError, match="the public URL must be http"):
            plates.plate_url(bad, "tok")


def test_a_plate_pins_the_township_witness_in_its_fragment() -> None:
    """The fragment is never sent to a server; the pin is 16 bytes of SHA-256 of the witness's key text."""
    vkey = "witness.town.example+0a1b2c3d+BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    pin = plates.witness_pin(vkey)
    assert pin == base64.urlsafe_b64encode(hashlib.sha256(vkey.encode()).digest()[:16]).decode().rstrip("=")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", pin)
    assert plates.plate_url(BASE, "tok", [pin]) == f"{BASE}/h/tok#w={pin}"
    assert plates.plate_url(BASE, "tok", [pin, "second"]) == f"{BASE}/h/tok#w={pin},second"


def test_reissue_plate_pins_the_witnesses_the_server_is_configured_with(
    runner: CliRunner, village: StoredVillage, cli_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    vkey = keys.verifier_key("witness.town.example", keys.SigningKey.generate().public_bytes, keys.ALG_COSIGNATURE_V1)
    monkeypatch.setenv("VILLAGELEDGER_WITNESSES", f"https://town.example/witness {vkey}")
    result = run(runner, "reissue-plate", village.slug, "h3", "--base-url", BASE)
    assert result.exit_code == 0 and result.stdout.endswith(f"#w={plates.witness_pin(vkey)}\n"), result.stdout


def test_the_public_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VILLAGELEDGER_PUBLIC_URL", raising=False)
    assert plates.public_url() == "http://127.0.0.1:5000"
    monkeypatch.setenv("VILLAGELEDGER_PUBLIC_URL", BASE)
    assert plates.public_url() == BASE


def test_a_sheet_shows_the_public_label_never_the_personal_data(village: StoredVillage) -> None:
    village.store.put_private(village.slug, "h2", {"name": "吴大山", "phone": "13800000000"})
    sheet = plates.plate_sheet(village.store, village.slug)
    assert sheet.village == "测试村"
    assert [(p.household, p.number, p.label) for p in sheet.plates] == [
        ("h1", "g1-h1", "h1家"), ("h2", "g1-h2", "h2家"), ("h3", "g2-h3", "h3家")]


def test_an_empty_sheet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(plates.PlateError, match="no households"):
        plates.write_pdf(plates.PlateSheet("测试村", []), tmp_path / "empty.pdf", base_url=BASE)


# --- the printed sheet ---------------------------------------------------------------------------------------


def render(pdf: Path) -> list[Path]:
    """The PDF's pages as PNG files at ``DPI``, in order."""
    prefix = pdf.with_suffix("")
    subprocess.run([required("pdftoppm"), "-r", str(DPI), "-png", str(pdf), str(prefix)], check=True, timeout=120)
    return sorted(pdf.parent.glob(f"{prefix.name}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))


def decode(images: list[Path]) -> list[list[str]]:
    """Every symbol zbarimg finds in each image (of any kind: a stray barcode would show too)."""
    result = subprocess.run([required("zbarimg"), "--xml", "-q", *map(str, images)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode in (0, 4), result.stderr  # 4: no symbol in any image
    found: dict[str, list[str]] = {}
    for source in ElementTree.fromstring(result.stdout).iter(f"{ZBAR}source"):
        found[source.attrib["href"]] = [
            f"{symbol.attrib['type']}:{symbol.findtext(f'{ZBAR}data')}" for symbol in source.iter(f"{ZBAR}symbol")
        ]
    return [found.get(str(image), []) for image in images]


def cells(page: Path) -> list[Path]:
    """The page cut into its plates' cells (``plates.COLUMNS`` x ``plates.ROWS``), one PNG each."""
    scale = DPI / 72
    crops = []
    with Image.open(page) as image:
        for slot in range(plates.COLUMNS * plates.ROWS):
            left = plates.MARGIN + slot % plates.COLUMNS * plates.CELL_WIDTH
            top = plates.MARGIN + slot // plates.COLUMNS * plates.CELL_HEIGHT
            box = (round(left * scale), round(top * scale),
                   round((left + plates.CELL_WIDTH) * scale), round((top + plates.CELL_HEIGHT) * scale))
            path = page.with_name(f"{page.stem}-cell{slot}.png")
            image.crop(box).save(path)
            crops.append(path)
    return crops


def text_of(pdf: Path) -> str:
    return subprocess.run([required("pdftotext"), "-enc", "UTF-8", str(pdf), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


@pytest.mark.slow
def test_every_plate_decodes_to_its_households_url_and_nothing_else(
    seven: StoredVillage, tmp_path: Path, font: str
) -> None:
    pdf = tmp_path / "plates.pdf"
    assert plates.write_pdf(plates.plate_sheet(seven.store, seven.slug), pdf, base_url=BASE) == 2
    pages = render(pdf)
    assert len(pages) == 2
    order = ["h1", "h2", "h5", "h7", "h3", "h4", "h6"]  # by grid, then number
    expected = [[f"QR-Code:{url_of(seven, h)}"] for h in order] + [[] for _ in range(5)]  # page 2 has one plate
    assert decode([cell for page in pages for cell in cells(page)]) == expected
    whole = decode(pages)  # the uncut pages: no code that is not a plate's
    assert set(whole[0] + whole[1]) <= {code for codes in expected for code in codes}
    with Image.open(pages[0]) as image:
        width, height = image.size
    assert (round(width / DPI * 25.4), round(height / DPI * 25.4)) == (210, 297)  # A4


@pytest.mark.slow
def test_each_code_is_printed_at_least_5_cm_wide_with_its_quiet_zone_clear(
    village: StoredVillage, tmp_path: Path, font: str
) -> None:
    pdf = tmp_path / "one.pdf"
    plates.write_pdf(plates.plate_sheet(village.store, village.slug, ["h1"]), pdf, base_url=BASE)
    (page,) = render(pdf)
    with Image.open(cells(page)[0]) as cell:
        ink = cell.convert("L").point(lambda v: 255 if v < 128 else 0)  # the grey cutting line is not ink
    inked_rows = [y for y in range(ink.height) if ink.crop((0, y, ink.width, y + 1)).getbbox()]
    # Blocks of inked rows: text lines, and the code (whose rows all hold a dark module).
    blocks, start = [], inked_rows[0]
    for previous, y in pairwise(inked_rows):
        if y - previous > 1:
            blocks.append((start, previous))
            start = y
    blocks.append((start, inked_rows[-1]))
    top, bottom = max(blocks, key=lambda b: b[1] - b[0])
    left, _, right, _ = ink.crop((0, top, ink.width, bottom + 1)).getbbox()  # type: ignore[misc]
    millimetres = 25.4 / DPI
    assert (right - left) * millimetres >= 50 and (bottom + 1 - top) * millimetres >= 50
    assert abs((right - left) - (bottom + 1 - top)) <= 2  # square
    module = (right - left) / 33  # version 4 for this URL
    light_above = top - max(b[1] for b in blocks if b[1] < top) - 1
    light_below = min(b[0] for b in blocks if b[0] > bottom) - bottom - 1
    assert min(light_above, light_below) >= 4 * module - 1  # ISO/IEC 18004: a quiet zone of 4 modules


@pytest.mark.slow
def test_the_chinese_text_is_drawn_in_an_embedded_font_and_extracts(
    seven: StoredVillage, tmp_path: Path, font: str
) -> None:
    seven.store.put_private(seven.slug, "h2", {"name": "吴大山", "phone": "13800000000"})
    pdf = tmp_path / "plates.pdf"
    plates.write_pdf(plates.plate_sheet(seven.store, seven.slug), pdf, base_url=BASE)
    listing = subprocess.run([required("pdffonts"), str(pdf)], capture_output=True, text=True, check=True,
                             timeout=60).stdout.splitlines()[2:]
    assert listing, "the PDF uses no font"
    for line in listing:  # name, type, encoding, emb, sub, uni, object, generation
        name, kind, *_, emb, sub, uni, _, _ = line.split()
        assert ("+WenQuanYiMicroHei" in name, kind, emb, sub, uni) == (True, "TrueType", "yes", "yes", "yes"), line
    text = text_of(pdf)
    counts = Counter(text.split())
    for line in plates.SCAN_LINES:
        assert counts[line] == 7
    assert counts["测试村"] == 7 + 2  # on every plate, and in the footer of each of the two pages
    for n in range(1, 8):
        assert f"h{n}家" in counts
    assert "吴大山" not in text and "13800000000" not in text


@pytest.mark.slow
def test_a_long_label_is_made_smaller_to_stay_on_its_plate(village: StoredVillage, tmp_path: Path, font: str) -> None:
    label = "东山脚下老樟树旁边第三户陈氏大家庭"
    village.append(village.kit.sign("household.update", {"household": "h1", "public": {"label": label}}))
    pdf = tmp_path / "long.pdf"
    plates.write_pdf(plates.plate_sheet(village.store, village.slug, ["h1"]), pdf, base_url=BASE)
    boxes = subprocess.run([required("pdftotext"), "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True,
                           timeout=60).stdout
    words = {word: (float(x0), float(x1)) for x0, x1, word in re.findall(
        r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]+)</word>', boxes)}
    assert label in words
    x0, x1 = words[label]
    assert plates.MARGIN < x0 and x1 < plates.MARGIN + plates.CELL_WIDTH  # inside the first plate's cell


# --- the command line ----------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line on the test village's database."""
    monkeypatch.setenv("VILLAGELEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("VILLAGELEDGER_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("VILLAGELEDGER_PUBLIC_URL", raising=False)


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args), catch_exceptions=False)


def test_plates_writes_every_households_plates(
    runner: CliRunner, village: StoredVillage, cli_env: None, tmp_path: Path, font: str
) -> None:
    output = tmp_path / "plates.pdf"
    result = run(runner, "plates", village.slug, "-o", str(output))
    assert (result.exit_code, result.stdout) == (0, f"wrote {output} (3 plates on 1 page)\n"), result.stderr
    assert output.read_bytes().startswith(b"%PDF-")
    assert len(door_tokens(village.store)) == 3


def test_plates_refuses_an_unknown_household_or_a_bad_url_and_writes_nothing(
    runner: CliRunner, village: StoredVillage, cli_env: None, tmp_path: Path
) -> None:
    output = tmp_path / "plates.pdf"
    result = run(runner, "plates", village.slug, "-o", str(output), "--household", "h1", "--household", "h99")
    assert (result.exit_code, result.stderr) == (1, "error: no household 'h99' in this village\n")
    result = run(runner, "plates", village.slug, "-o", str(output), "--base-url", "cun.example.cn")
    assert result.exit_code == 1 and "the public URL must be http" in result.stderr
    result = run(runner, "plates", "nowhere", "-o", str(output))
    assert (result.exit_code, result.stderr) == (1, "error: no village 'nowhere'\n")
    assert not output.exists()
    assert door_tokens(village.store) == []


@pytest.mark.slow
def test_a_selection_prints_only_those_plates(
    runner: CliRunner, seven: StoredVillage, cli_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, font: str
) -> None:
    monkeypatch.setenv("VILLAGELEDGER_PUBLIC_URL", BASE)
    output = tmp_path / "some.pdf"
    result = run(runner, "plates", seven.slug, "-o", str(output), "--household", "h6", "--household", "h2")
    assert result.stdout == f"wrote {output} (2 plates on 1 page)\n", result.stderr
    (page,) = render(output)
    expected = [[f"QR-Code:{url_of(seven, 'h2')}"], [f"QR-Code:{url_of(seven, 'h6')}"], [], [], [], []]
    assert decode(cells(page)) == expected
    assert {t.household_id for t in door_tokens(seven.store)} == {"h2", "h6"}


def test_reissue_plate_prints_the_new_url_and_the_old_plate_is_replaced(
    runner: CliRunner, village: StoredVillage, cli_env: None
) -> None:
    old = plates.token_for(village.store, village.slug, "h3")
    result = run(runner, "reissue-plate", village.slug, "h3", "--base-url", BASE + "/")
    assert result.exit_code == 0, result.stderr
    match = re.fullmatch(rf"{re.escape(BASE)}/h/([A-Za-z0-9_-]{{22}})\n", result.stdout)
    assert match, result.stdout
    assert plates.resolve(village.store, match.group(1)) == (village.slug, "h3")
    with pytest.raises(plates.PlateReplaced):
        plates.resolve(village.store, old)
    result = run(runner, "reissue-plate", village.slug, "h99")
    assert (result.exit_code, result.stderr) == (1, "error: no household 'h99' in this village\n")


@pytest.mark.slow
def test_codes_made_by_worker_processes_are_the_ones_made_here_in_order() -> None:
    urls = [plates.plate_url(BASE, f"{n:022d}") for n in range(plates.WORKERS_FROM + 40)]
    assert list(plates.qr_symbols(urls, workers=2)) == [plates.qr_symbol(url) for url in urls]


@pytest.mark.slow
def test_the_plates_of_the_api_point_at_the_public_url_whatever_the_host_header(
    app: Flask, client: FlaskClient, village: StoredVillage, login: Callable[[str], dict[str, str]], tmp_path: Path,
    font: str,
) -> None:
    app.config["PUBLIC_URL"] = "https://cun.example.cn"
    response = client.get(f"/api/v1/villages/{village.slug}/plates.pdf?household=h1",
                          headers={**login("founder"), "Host": "evil.example"})
    pdf = tmp_path / "api.pdf"
    pdf.write_bytes(response.data)
    (page,) = render(pdf)
    token = plates.token_for(village.store, village.slug, "h1")
    assert decode(cells(page)[:1]) == [[f"QR-Code:https://cun.example.cn/h/{token}"]]
