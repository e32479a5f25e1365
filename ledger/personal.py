"""Personal data that must never enter the public log (PIPL): the log cannot be erased, so a free-text
field that holds an ID card number, a mobile phone number or a bank card number is refused (rules 2).

What is found (``find_personal_data``), each as a whole number not part of a longer run of digits:
- a resident ID card number (GB 11643): 17 digits and a check character (a digit or X), whose ISO 7064
  MOD 11-2 checksum holds;
- a mainland mobile phone number: 11 digits starting 13-19, optionally written in groups with spaces or
  hyphens (139 1234 5678, 139-1234-5678);
- a bank card number: 16 to 19 digits, optionally in groups, whose Luhn checksum holds.

The console's forms run the same tests before anything is signed (``web/static/forms.js``).
"""

from __future__ import annotations

import re
from typing import Final

ID_CARD: Final = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
MOBILE: Final = re.compile(r"(?<![0-9])1[3-9][0-9](?:[ -]?[0-9]){8}(?![0-9])")
CARD: Final = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){15,18}(?![0-9])")
ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK: Final = "10X98765432"  # the check character for each weighted sum modulo 11


def id_card_checksum_holds(number: str) -> bool:
    """Whether an 18-character ID card number's last character is its ISO 7064 MOD 11-2 check."""
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], ID_WEIGHTS))
    return ID_CHECK[total % 11] == number[17].upper()


def luhn_holds(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def find_personal_data(text: str) -> str | None:
    """What personal data ``text`` holds ("an ID card number", ...), or None."""
    if any(id_card_checksum_holds(match.group()) for match in ID_CARD.finditer(text)):
        return "an ID card number"
    if MOBILE.search(text):
        return "a mobile phone number"
    if any(luhn_holds(re.sub(r"[ -]", "", match.group())) for match in CARD.finditer(text)):
        return "a bank card number"
    return None
