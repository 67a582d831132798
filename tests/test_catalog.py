"""The catalog (config/catalog.toml, services.catalog): validation at start-up, cart pricing."""
from __future__ import annotations

import copy
import itertools
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from services.catalog import (
    DEFAULT_CATALOG_PATH,
    Cart,
    CatalogError,
    format_fen,
    load_catalog,
    quote,
)

# docs/rules.md, What is sold: the suggested defaults, written out here independently of the TOML file.
# code: (rank, price per year in fen, contracts per year, sellable, chat_payable)
EDITIONS = {
    "experience": (0, 0, 0, False, False),
    "advanced": (1, 480_000, 600, True, True),
    "professional": (2, 1_980_000, 3_000, True, False),
    "flagship": (3, 5_980_000, 10_000, True, False),
}
# code: (contracts, price in fen)
PACKS = {"pack_1k": (1_000, 400_000), "pack_10k": (10_000, 3_000_000)}
CHAT_LIMIT_FEN = 5_000_000  # ¥50,000


def shipped_raw() -> dict[str, Any]:
    return tomllib.loads(DEFAULT_CATALOG_PATH.read_text(encoding="utf-8"))


# A tiny TOML writer for this file's shape: top-level values, then arrays of tables.
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def to_toml(data: dict[str, Any]) -> str:
    def is_tables(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(t, dict) for t in v)

    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not is_tables(v)]
    for name, tables in data.items():
        if is_tables(tables):
            for table in tables:
                lines.append(f"\n[[{name}]]")
                lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def write_catalog(tmp_path: Path, data: dict[str, Any] | str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(data if isinstance(data, str) else to_toml(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


# --- the shipped catalog -------------------------------------------------------------------


def test_shipped_catalog_matches_the_domain_defaults(catalog):
    assert catalog.currency == "CNY"
    assert catalog.chat_payment_limit_fen == CHAT_LIMIT_FEN
    assert catalog.order_ttl_minutes == 30
    assert catalog.years == [1, 2, 3]
    got = {
        e.code: (e.rank, e.price_per_year_fen, e.contracts_per_year, e.sellable, e.chat_payable)
        for e in catalog.editions
    }
    assert got == EDITIONS
    assert {p.code: (p.contracts, p.price_fen) for p in catalog.addon_packs} == PACKS


def test_sellable_editions_are_ranked_and_exclude_experience(catalog):
    assert [e.code for e in catalog.sellable_editions] == ["advanced", "professional", "flagship"]
    assert catalog.edition("experience").sellable is False
    assert catalog.edition("nope") is None
    assert catalog.pack(None) is None and catalog.pack("pack_1k").contracts == 1_000


def test_the_test_toml_writer_round_trips_the_shipped_file(tmp_path, catalog):
    # The bad-catalog tests below rely on it: unchanged data must load as the shipped catalog.
    assert load_catalog(write_catalog(tmp_path, shipped_raw())) == catalog


def test_load_catalog_accepts_a_str_path():
    assert load_catalog(str(DEFAULT_CATALOG_PATH)).currency == "CNY"


# --- bad catalogs --------------------------------------------------------------------------


def _set(path: tuple, value: Any):
    def change(data: dict[str, Any]) -> None:
        *parents, last = path
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    return change


def _delete(path: tuple):
    def change(data: dict[str, Any]) -> None:
        *parents, last = path
        node = data
        for part in parents:
            node = node[part]
        del node[last]
    return change


BAD = {
    "negative edition price": (_set(("editions", 1, "price_per_year_fen"), -1),
                               "editions.1.price_per_year_fen"),
    "missing edition field": (_delete(("editions", 2, "contracts_per_year")),
                              "editions.2.contracts_per_year"),
    "missing sellable flag": (_delete(("editions", 3, "sellable")), "editions.3.sellable"),
    "duplicate edition code": (_set(("editions", 3, "code"), "advanced"), "editions.3.code"),
    "duplicate edition rank": (_set(("editions", 2, "rank"), 1), "editions.2.rank"),
    "sellable edition priced 0": (_set(("editions", 1, "price_per_year_fen"), 0),
                                  "editions.1.price_per_year_fen"),
    "price as text": (_set(("editions", 1, "price_per_year_fen"), "4800"),
                      "editions.1.price_per_year_fen"),
    "negative pack price": (_set(("addon_packs", 0, "price_fen"), -400_000),
                            "addon_packs.0.price_fen"),
    "pack without contracts": (_set(("addon_packs", 1, "contracts"), 0),
                               "addon_packs.1.contracts"),
    "duplicate pack code": (_set(("addon_packs", 1, "code"), "pack_1k"), "addon_packs.1.code"),
    "year 0": (_set(("years",), [0, 1, 2]), "years"),
    "year 11": (_set(("years",), [1, 2, 11]), "years"),
    "negative year": (_set(("years",), [-1]), "years"),
    "repeated year": (_set(("years",), [1, 1, 2]), "years"),
    "no years": (_set(("years",), []), "years"),
    "missing chat limit": (_delete(("chat_payment_limit_fen",)), "chat_payment_limit_fen"),
    "zero chat limit": (_set(("chat_payment_limit_fen",), 0), "chat_payment_limit_fen"),
    "lowercase currency": (_set(("currency",), "cny"), "currency"),
    "zero order ttl": (_set(("order_ttl_minutes",), 0), "order_ttl_minutes"),
    "no editions": (_set(("editions",), []), "editions"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_catalog_raises_catalog_error_naming_the_field(tmp_path, case):
    change, field = BAD[case]
    data = copy.deepcopy(shipped_raw())
    change(data)
    path = write_catalog(tmp_path, data)

    with pytest.raises(CatalogError) as caught:
        load_catalog(path)

    message = str(caught.value)
    assert field in message, message
    assert str(path) in message


def test_every_problem_is_reported_at_once(tmp_path):
    data = copy.deepcopy(shipped_raw())
    data["editions"][1]["price_per_year_fen"] = -5
    data["addon_packs"][0]["price_fen"] = -5
    with pytest.raises(CatalogError) as caught:
        load_catalog(write_catalog(tmp_path, data))
    assert "editions.1.price_per_year_fen" in str(caught.value)
    assert "addon_packs.0.price_fen" in str(caught.value)


def test_broken_toml_raises_catalog_error(tmp_path):
    path = write_catalog(tmp_path, to_toml(shipped_raw()) + "\n[[editions]\ncode = \n")
    with pytest.raises(CatalogError, match="not valid TOML"):
        load_catalog(path)


def test_a_missing_file_raises_catalog_error(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "absent.toml")


def test_catalog_error_is_a_value_error():
    assert issubclass(CatalogError, ValueError)


def test_figures_are_editable_in_config(tmp_path):
    data = copy.deepcopy(shipped_raw())
    data["editions"][1]["price_per_year_fen"] = 500_000
    data["editions"][1]["contracts_per_year"] = 700
    data["chat_payment_limit_fen"] = 1_000_000
    data["years"] = [3, 1]
    catalog = load_catalog(write_catalog(tmp_path, data))
    assert catalog.edition("advanced").price_per_year_fen == 500_000
    assert catalog.edition("advanced").contracts_per_year == 700
    assert catalog.chat_payment_limit_fen == 1_000_000
    assert catalog.years == [1, 3]


# --- quote ---------------------------------------------------------------------------------

SELLABLE = [code for code, spec in EDITIONS.items() if spec[3]]
QUOTE_CASES = list(itertools.product(SELLABLE, [1, 2, 3], [None, "pack_1k", "pack_10k"]))


@pytest.mark.parametrize(("edition", "years", "pack"), QUOTE_CASES)
def test_quote_table(catalog, edition, years, pack):
    _, price, per_year, _, chat_ok = EDITIONS[edition]
    q = quote(catalog, Cart(edition=edition, years=years, pack=pack, pack_chosen=True))

    expected_lines = [("edition", edition, years, price * years)]
    contracts = per_year * years
    if pack:
        pack_contracts, pack_price = PACKS[pack]
        expected_lines.append(("pack", pack, 1, pack_price))
        contracts += pack_contracts
    total = sum(line[3] for line in expected_lines)

    assert [(line.kind, line.code, line.quantity, line.amount_fen) for line in q.lines] == expected_lines
    assert q.total_fen == total
    assert q.contracts == contracts
    assert (q.edition, q.years, q.pack) == (edition, years, pack)
    assert q.chat_payable is (chat_ok and total <= CHAT_LIMIT_FEN)


def test_quote_table_spot_values(catalog):
    def q(edition, years, pack=None):
        return quote(catalog, Cart(edition=edition, years=years, pack=pack, pack_chosen=True))

    assert (q("advanced", 1).total_fen, q("advanced", 1).contracts) == (480_000, 600)
    assert q("advanced", 1).chat_payable
    # R2: Professional and Flagship are never paid in chat, however small the order.
    assert q("professional", 1).total_fen == 1_980_000 and not q("professional", 1).chat_payable
    assert q("flagship", 3, "pack_10k").total_fen == 20_940_000
    assert q("flagship", 3, "pack_10k").contracts == 40_000


def test_advanced_three_years_with_10k_pack_is_payable_until_the_limit_is_lowered(catalog):
    cart = Cart(edition="advanced", years=3, pack="pack_10k", pack_chosen=True)
    q = quote(catalog, cart)
    assert q.total_fen == 4_440_000  # ¥44,400
    assert q.contracts == 3 * 600 + 10_000
    assert q.chat_payable

    at_limit = catalog.model_copy(update={"chat_payment_limit_fen": 4_440_000})
    assert quote(at_limit, cart).chat_payable  # the limit itself may be paid in chat

    lowered = catalog.model_copy(update={"chat_payment_limit_fen": 4_439_999})
    assert quote(lowered, cart).chat_payable is False
    assert quote(lowered, cart).total_fen == 4_440_000


def test_quote_does_not_change_the_cart(catalog):
    cart = Cart(edition="advanced", years=2, pack="pack_1k", pack_chosen=True)
    before = cart.model_copy()
    quote(catalog, cart)
    assert cart == before


BAD_CARTS = {
    "empty": Cart(),
    "no edition": Cart(years=1, pack_chosen=True),
    "no years": Cart(edition="advanced", pack_chosen=True),
    "pack not chosen yet": Cart(edition="advanced", years=1),
    "unknown edition": Cart(edition="platinum", years=1, pack_chosen=True),
    "experience is not sold": Cart(edition="experience", years=1, pack_chosen=True),
    "4 years": Cart(edition="advanced", years=4, pack_chosen=True),
    "0 years": Cart(edition="advanced", years=0, pack_chosen=True),
    "unknown pack": Cart(edition="advanced", years=1, pack="pack_5k", pack_chosen=True),
}


@pytest.mark.parametrize("case", sorted(BAD_CARTS))
def test_an_incomplete_or_unknown_cart_raises_value_error(catalog, case):
    with pytest.raises(ValueError):
        quote(catalog, BAD_CARTS[case])


# --- format_fen ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (0, "¥0.00"),
        (1, "¥0.01"),
        (99, "¥0.99"),
        (100, "¥1.00"),
        (480_000, "¥4,800.00"),
        (4_440_000, "¥44,400.00"),
        (5_980_050, "¥59,800.50"),
        (123_456_789, "¥1,234,567.89"),
        (-1, "-¥0.01"),
        (-480_050, "-¥4,800.50"),
    ],
)
def test_format_fen(fen, text):
    assert format_fen(fen) == text
