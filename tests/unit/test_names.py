"""Names that cannot impersonate, without sockets: PRECIS enforcement and TR39 skeletons."""
import pytest

from server.chat import names


@pytest.mark.parametrize('one, other', [
    ('\u0430', 'a'),  # Cyrillic а
    ('\u043e', 'o'),  # Cyrillic о
    ('\u03bf', 'o'),  # Greek omicron
    ('\u0391', 'A'),  # Greek capital alpha
    ('\u0421', 'C'),  # Cyrillic capital es
    ('rn', 'm'),
    ('0', 'O'),
    ('1', 'l'),
    ('I', 'l'),
    ('\uff41', 'a'),  # fullwidth a
    ('\U0001d41a', 'a'),  # mathematical bold a
    ('p\u0430ypal', 'paypal'),
])
def test_known_tr39_pairs_share_a_skeleton(one, other):
    assert names.skeleton(one) == names.skeleton(other)


@pytest.mark.parametrize('text, prototype', [('m', 'rn'), ('0', 'O'), ('I', 'l'),
                                              ('\u0430', 'a'), ('\uff41', 'a')])
def test_the_skeleton_is_unicodes_prototype(text, prototype):
    assert names.skeleton(text) == prototype


@pytest.mark.parametrize('one, other', [('a', 'b'), ('alice', 'alina'), ('rn', 'nn'),
                                        ('o', 'e'), ('bob', 'Bob')])
def test_different_looking_strings_have_different_skeletons(one, other):
    assert names.skeleton(one) != names.skeleton(other)


def test_the_skeleton_of_a_skeleton_is_itself():
    # The table names pairs, not which side is the prototype: a wrong guess would show here.
    for prototype in set(names._PROTOTYPES.values()):
        assert names.skeleton(names.skeleton(prototype)) == names.skeleton(prototype)


@pytest.mark.parametrize('nick', ['alice', 'Alice', 'ALICE', '\u0430lice', 'a1ice', 'alic\u0435',
                                  'alicé', 'alice\u0323', '\u0251lice'])
def test_case_and_look_alikes_fold_to_one_key(nick):
    assert names.fold(nick) == names.fold('alice')


@pytest.mark.parametrize('one, other', [('b0b', 'bob'), ('modern', 'rnodern'), ('Ana', 'ANA')])
def test_fold_ignores_case_after_the_skeleton_too(one, other):
    assert names.fold(one) == names.fold(other)


@pytest.mark.parametrize('nick, lookalike', [
    ('alice', 'aIice'),  # capital I for l: lower-casing would make it "aiice"
    ('TOM', '\u03a4\u039f\u039c'),  # Greek capitals
    ('BOB', '\u0392OB'),  # Greek capital beta, whose small letter looks like nothing Latin
    ('HANNA', '\u041dANNA'),  # Cyrillic capital en
])
def test_look_alikes_in_capitals_share_a_shape(nick, lookalike):
    assert names.fold(nick) != names.fold(lookalike)
    assert names.shape(nick) == names.shape(lookalike)


def test_names_that_look_different_keep_apart():
    for one, other in (('alice', 'bob'), ('ALICE', 'aIice'), ('Al ice', 'Alice')):
        assert names.fold(one) != names.fold(other) and names.shape(one) != names.shape(other)


@pytest.mark.parametrize('sent, shown', [
    ('\uff41\uff4c\uff49\uff43\uff45', 'alice'),  # fullwidth
    ('\uff21\uff4c\uff49\uff43\uff45', 'Alice'),  # case kept
    ('ali\u0301ce', 'al\u00edce'),  # NFKC composes
    ('  Ana \u00a0\u3000 Maria ', 'Ana Maria'),  # spaces mapped and collapsed
    ('\u2163', 'IV'),  # compatibility characters spelled out
    ('Zoë 🙂', 'Zoë 🙂'),
])
def test_enforce_shows_the_precis_nickname_form(sent, shown):
    assert names.enforce(sent) == shown


@pytest.mark.parametrize('name, why', [
    ('ali\ue000ce', 'may not contain U+E000, a private-use character'),
    ('\U000f0000', 'may not contain U+F0000, a private-use character'),
    ('x\u0378', 'may not contain U+0378, an unassigned code point or noncharacter'),
    ('x\ufdd0', 'may not contain U+FDD0, an unassigned code point or noncharacter'),
    ('a\u0007b', 'may not contain U+0007, a control character'),
    ('ali\u200bce', 'may not contain U+200B, an invisible formatting character'),
    ('\u3164alice', 'may not contain U+1160, an old Hangul jamo (a filler shows as nothing)'),
    ('\u0301alice', 'may not start with a combining mark (U+0301)'),
    ('alice\u2800', 'may not contain U+2800, a blank character'),
    ('\u00a0', 'is empty'),
])
def test_enforce_refuses_what_cannot_be_shown_saying_why(name, why):
    with pytest.raises(names.NameRefused) as refused:
        names.enforce(name)
    assert str(refused.value) == why
