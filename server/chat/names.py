"""Nicks and room names that cannot pass for someone else's.

A name is enforced with the PRECIS Nickname profile (RFC 8266, ``precis-i18n``): fullwidth
letters become ASCII, the text is NFKC-normalized, spaces are collapsed, and characters that
are invisible or have no fixed meaning (private use, unassigned, controls, default-ignorable)
are refused. The enforced form, case kept, is the name everyone is shown.

Two names clash when either of their keys is equal:

- ``fold``: the Unicode TR39 confusable skeleton of the case-mapped form, so ``ALICE``,
  ``аlice`` (Cyrillic а) and ``a1ice`` all clash with ``alice``;
- ``shape``: the skeleton of the name as shown, for look-alikes that differ in lower case but
  not in capitals: ``aIice`` (capital I) and ``ΤΟΜ`` (Greek) next to ``alice`` and ``TOM``.

Both keys also drop accents and other combining marks, so ``alicé`` clashes with ``alice``.
"""
import unicodedata

from confusable_homoglyphs.utils import load
from precis_i18n import get_profile

_NICKNAME = get_profile('NicknameCasePreserved')
# confusable_homoglyphs wraps right-to-left characters in LEFT-TO-RIGHT MARKs for display.
_LRM = '\u200e'
_MARKS = frozenset({'Mn', 'Mc', 'Me'})
_NONSPACING_MARKS = frozenset({'Mn', 'Me'})
# Characters PRECIS lets through that show as nothing at all.
_BLANK = frozenset({'\u2800'})  # BRAILLE PATTERN BLANK
_KINDS = {
    'Co': 'a private-use character',
    'Cn': 'an unassigned code point or noncharacter',
    'Cc': 'a control character',
    'Cf': 'an invisible formatting character',
    'Cs': 'half of a UTF-16 surrogate pair',
}
_REASONS = {
    'old_hangul_jamo': 'an old Hangul jamo (a filler shows as nothing)',
    'precis_ignorable_properties': 'an invisible character',
    'unassigned': 'an unassigned code point',
}


class NameRefused(ValueError):
    """A name PRECIS or the look-alike rules refuse; the message says why, after "the nick"."""


def _prototypes():
    """Map each confusable character to its prototype, from confusable_homoglyphs' table.

    The table lists, for both sides of every line of Unicode's confusables.txt, the other side:
    a character that maps to a prototype has that one entry, a prototype one entry per
    character mapping to it. When both sides have a single entry either may be the prototype;
    the smaller one stands for both, which groups the same characters together.
    """
    table = {key.strip(_LRM): [entry['c'].strip(_LRM) for entry in entries]
             for key, entries in load('confusables.json').items()}
    prototypes = {}
    for char, (target, *more) in table.items():
        if more or len(char) != 1:
            continue
        if len(target) > 1 or len(table.get(target, ())) > 1 or target < char:
            prototypes[char] = target
    # A prototype of several characters may hold one that the choice above stands for another.
    return {char: ''.join(prototypes.get(c, c) for c in unicodedata.normalize('NFD', target))
            for char, target in prototypes.items()}


_PROTOTYPES = _prototypes()


def enforce(value):
    """Return ``value`` in the PRECIS Nickname form (case kept), or raise NameRefused."""
    try:
        name = _NICKNAME.enforce(value)
    except UnicodeEncodeError as refused:
        raise NameRefused(_why(refused)) from None
    if unicodedata.category(name[0]) in _MARKS:
        raise NameRefused(f'may not start with a combining mark ({_code_point(name[0])})')
    blank = next((char for char in name if char in _BLANK), None)
    if blank is not None:
        raise NameRefused(f'may not contain {_code_point(blank)}, a blank character')
    return name


def _why(refused):
    if refused.reason.endswith('/empty'):
        return 'is empty'
    char = refused.object[refused.start]
    kind = (_KINDS.get(unicodedata.category(char))
            or _REASONS.get(refused.reason.rpartition('/')[2])
            or 'a character not allowed in names')
    return f'may not contain {_code_point(char)}, {kind}'


def _code_point(char):
    return f'U+{ord(char):04X}'


def skeleton(text):
    """Return the Unicode TR39 confusable skeleton: equal for strings that look alike."""
    decomposed = unicodedata.normalize('NFD', text)
    return unicodedata.normalize('NFD', ''.join(_PROTOTYPES.get(c, c) for c in decomposed))


def fold(name):
    """Return the key two names clash on whatever their case: the skeleton of the case-mapped
    PRECIS form (RFC 8266 case folding, then NFKC), cased again, without combining marks."""
    case_mapped = unicodedata.normalize('NFKC', name.casefold())
    return _unmarked(skeleton(case_mapped)).casefold()


def shape(name):
    """Return the key two names clash on as shown: the skeleton without combining marks."""
    return _unmarked(skeleton(name))


def _unmarked(text):
    return ''.join(c for c in text if unicodedata.category(c) not in _NONSPACING_MARKS)
