#!/usr/bin/env python3
"""Writes the merge test cases of tests/unit/test_merge.c and the seeds of
tests/fuzz/fuzz_merge.c:

  records/<case>.json   {"description", "type", "base", "ours", "theirs",
                         "merged", "conflicts": [{"pointer", "base", "ours",
                         "theirs"}]}; an absent member is an absent value
  members/<case>.json   {"description", "base", "ours", "theirs", "merged"}
  policy/<case>.json    the same for consortium/policy.json
  corpus/<kind>-<case>  <selector byte> base NUL ours NUL theirs

The expected results are written by hand below, not computed: run this
after changing a case, never to make a failing test pass.
Usage: python3 tests/data/merge/gen.py
"""
import copy, json, os
OUT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(OUT, '..', '..', '..'))
S = lambda p: json.load(open(ROOT + '/tests/data/sample/' + p))

def write(kind, name, case):
    d = os.path.join(OUT, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name + '.json'), 'w') as f:
        f.write(json.dumps(case, ensure_ascii=False, indent=2, sort_keys=True) + '\n')

def rec(name, desc, base, ours, theirs, merged, conflicts=(), type='service'):
    case = {'description': desc, 'type': type, 'conflicts': list(conflicts)}
    for k, v in (('base', base), ('ours', ours), ('theirs', theirs), ('merged', merged)):
        if v is not None:
            case[k] = v
    write('records', name, case)

def c(pointer, base=None, ours=None, theirs=None):
    d = {'pointer': pointer}
    for k, v in (('base', base), ('ours', ours), ('theirs', theirs)):
        if v is not None:
            d[k] = v
    return d

def w(d, **kw):
    d = copy.deepcopy(d)
    for k, v in kw.items():
        if v is DEL:
            d.pop(k, None)
        else:
            d[k] = v
    return d
DEL = object()

B = {'id': 'r', 'name': 'A', 'alert': 'x'}
rec('field-one-side', 'only one side changed a field: that side\'s value; '
    'each side changed a different field', B, w(B, name='B'), w(B, alert='y'),
    w(B, name='B', alert='y'))
rec('field-same-change', 'both made the same change', B, w(B, name='B'),
    w(B, name='B', alert='y'), w(B, name='B', alert='y'))
rec('field-removed-unchanged', 'removed by one side, unchanged by the other: removed',
    B, w(B, alert=DEL), w(B, name='B'), w(B, name='B', alert=DEL))
rec('field-removed-both', 'removed by both', B, w(B, alert=DEL),
    w(B, alert=DEL, name='C'), w(B, alert=DEL, name='C'))
rec('field-conflict', 'both changed a field differently: a conflict, the base stays',
    B, w(B, name='B', alert='y'), w(B, name='C'), w(B, alert='y'),
    [c('/name', 'A', 'B', 'C')])
rec('field-added-both-different', 'added by both, differently: a conflict, still absent',
    B, w(B, email='a@x.ma'), w(B, email='b@x.ma'), B,
    [c('/email', None, 'a@x.ma', 'b@x.ma')])
rec('field-added-both-equal', 'added by both, the same', B, w(B, email='a@x.ma'),
    w(B, email='a@x.ma'), w(B, email='a@x.ma'))
rec('field-delete-edit', 'removed by one side, edited by the other: a conflict, the base stays',
    B, w(B, alert=DEL), w(B, alert='y'), B, [c('/alert', 'x', None, 'y')])
rec('field-type-change', 'a string made an object on both sides, differently: atomic',
    B, w(B, alert={'a': 1}), w(B, alert={'b': 2}), B,
    [c('/alert', 'x', {'a': 1}, {'b': 2})])
rec('field-number-canonical', 'numbers compare by their canonical encoding',
    w(B, minimum_age=10), w(B, minimum_age=12, name='B'), w(B, minimum_age=12.0),
    w(B, minimum_age=12, name='B'))

R = w(B, x_referral={'methods': ['phone_call'], 'response_delay': 'same_day',
                     'form_ref': 'Fiche'})
rec('nested-clean', '/x_referral/methods on one side, /x_referral/response_delay '
    'on the other: merged member by member',
    R, w(R, x_referral=w(R['x_referral'], methods=['phone_call', 'referral_form'])),
    w(R, x_referral=w(R['x_referral'], response_delay='within_48h')),
    w(R, x_referral=w(R['x_referral'], methods=['phone_call', 'referral_form'],
                      response_delay='within_48h')))
rec('nested-conflict', 'a nested conflict keeps the nested base value only',
    R, w(R, x_referral=w(R['x_referral'], response_delay='within_48h', form_ref='F2')),
    w(R, x_referral=w(R['x_referral'], response_delay='within_week')),
    w(R, x_referral=w(R['x_referral'], form_ref='F2')),
    [c('/x_referral/response_delay', 'same_day', 'within_48h', 'within_week')])
rec('nested-added-both', 'an object added on both sides merges member by member',
    B, w(B, x_referral={'methods': ['phone_call']}),
    w(B, x_referral={'methods': ['email'], 'consent_required': True}),
    w(B, x_referral={'methods': ['email', 'phone_call'], 'consent_required': True}))
rec('nested-added-both-conflicting', 'an object added on both sides whose only '
    'member conflicts stays absent',
    B, w(B, x_referral={'response_delay': 'same_day'}),
    w(B, x_referral={'response_delay': 'within_week'}), B,
    [c('/x_referral/response_delay', None, 'same_day', 'within_week')])
rec('nested-delete-edit', 'an object removed by one side and edited by the other',
    R, w(R, x_referral=DEL), w(R, x_referral=w(R['x_referral'], form_ref='F2')), R,
    [c('/x_referral', R['x_referral'], None, w(R['x_referral'], form_ref='F2'))])
rec('nested-i18n', 'translations into different languages on each side',
    B, w(B, x_i18n={'ar': {'name': 'ا'}}), w(B, x_i18n={'en': {'name': 'E'}}),
    w(B, x_i18n={'ar': {'name': 'ا'}, 'en': {'name': 'E'}}))

L = w(B, x_languages=['ar', 'fr', 'ary'])
rec('set-languages', 'languages added on both sides, one removed on one side',
    L, w(L, x_languages=['ar', 'fr', 'ary', 'en']), w(L, x_languages=['ar', 'ary', 'tzm']),
    w(L, x_languages=['ar', 'ary', 'en', 'tzm']))
rec('set-same-element', 'the same language added on both sides, removals on both',
    L, w(L, x_languages=['ar', 'en']), w(L, x_languages=['fr', 'en', 'ar']),
    w(L, x_languages=['ar', 'en']))
rec('set-field-deleted', 'a set removed by one side counts as emptied',
    L, w(L, x_languages=DEL), w(L, x_languages=['ar', 'fr', 'ary', 'en']),
    w(L, x_languages=['en']))
rec('set-emptied', 'a set emptied on both sides by different removals',
    w(B, x_populations=['all', 'women']), w(B, x_populations=['women']),
    w(B, x_populations=['all']), w(B, x_populations=[]))
rec('set-added', 'a set added on both sides', B, w(B, x_categories=['health']),
    w(B, x_categories=['mhpss']), w(B, x_categories=['health', 'mhpss']))
rec('set-nested', 'a set inside an object: /x_referral/methods',
    R, w(R, x_referral=w(R['x_referral'], methods=['email'])),
    w(R, x_referral=w(R['x_referral'], methods=['phone_call', 'in_person'])),
    w(R, x_referral=w(R['x_referral'], methods=['email', 'in_person'])))
rec('set-not-strings', 'a set field holding something else is atomic',
    L, w(L, x_languages=[1]), w(L, x_languages=['en']), L,
    [c('/x_languages', L['x_languages'], [1], ['en'])])

V = w(B, x_verified={'by': 'ms2', 'date': '2025-01-10', 'method': 'phone'})
rec('latest-two-confirmations', 'two confirmations: the later date wins, as a whole',
    V, w(V, x_verified={'by': 'alcs', 'date': '2025-03-01', 'method': 'visit'}),
    w(V, x_verified={'by': 'dj', 'date': '2025-02-15', 'method': 'phone', 'note': 'n'}),
    w(V, x_verified={'by': 'alcs', 'date': '2025-03-01', 'method': 'visit'}))
rec('latest-equal-dates', 'equal dates, different "by": the greater canonical encoding',
    V, w(V, x_verified={'by': 'alcs', 'date': '2025-03-01', 'method': 'phone'}),
    w(V, x_verified={'by': 'ms2', 'date': '2025-03-01', 'method': 'phone'}),
    w(V, x_verified={'by': 'ms2', 'date': '2025-03-01', 'method': 'phone'}))
rec('latest-one-side-earlier', 'only one side changed it (a correction to an earlier '
    'date): that side\'s value',
    V, w(V, x_verified={'by': 'ms2', 'date': '2024-12-01', 'method': 'phone'}),
    w(V, name='B'),
    w(V, name='B', x_verified={'by': 'ms2', 'date': '2024-12-01', 'method': 'phone'}))
rec('latest-deleted', 'removed by one side, confirmed by the other: the confirmation',
    V, w(V, x_verified=DEL),
    w(V, x_verified={'by': 'ms2', 'date': '2025-04-01', 'method': 'phone'}),
    w(V, x_verified={'by': 'ms2', 'date': '2025-04-01', 'method': 'phone'}))
rec('latest-no-date', 'a candidate without a date loses to one with a date',
    V, w(V, x_verified={'by': 'ms2'}),
    w(V, x_verified={'by': 'dj', 'date': '2020-01-01', 'method': 'phone'}),
    w(V, x_verified={'by': 'dj', 'date': '2020-01-01', 'method': 'phone'}))

P = w(B, x_visibility='consortium')
rec('protective-visibility', 'public against coordination: coordination, and the '
    'conflict is listed', P, w(P, x_visibility='public'),
    w(P, x_visibility='coordination'), w(P, x_visibility='coordination'),
    [c('/x_visibility', 'consortium', 'public', 'coordination')])
rec('protective-both-loosen', 'both loosen, differently: the more protective of the '
    'candidates', w(B, x_visibility='coordination'), w(B, x_visibility='public'),
    w(B, x_visibility='consortium'), w(B, x_visibility='consortium'),
    [c('/x_visibility', 'coordination', 'public', 'consortium')])
rec('protective-absent', 'absent is the least protective', P, w(P, x_visibility=DEL),
    w(P, x_visibility='public'), w(P, x_visibility='public'),
    [c('/x_visibility', 'consortium', None, 'public')])
rec('protective-one-side', 'one side loosens, the other does not touch it: taken',
    P, w(P, x_visibility='public'), w(P, name='B'), w(P, x_visibility='public', name='B'))
rec('protective-sensitivity', 'location x_sensitivity: confidential beats normal',
    {'id': 'l', 'name': 'A'}, {'id': 'l', 'name': 'A', 'x_sensitivity': 'normal'},
    {'id': 'l', 'name': 'A', 'x_sensitivity': 'confidential'},
    {'id': 'l', 'name': 'A', 'x_sensitivity': 'confidential'},
    [c('/x_sensitivity', None, 'normal', 'confidential')], type='location')

SAL = w(B, service_at_locations=[{'id': 'a', 'location_id': 'l1'}])
rec('array-atomic', 'service_at_locations changed on both sides: a conflict at the '
    'array, which keeps its base value',
    SAL, w(SAL, service_at_locations=[{'id': 'a', 'location_id': 'l1'},
                                      {'id': 'b', 'location_id': 'l2'}]),
    w(SAL, service_at_locations=[{'id': 'a', 'location_id': 'l3'}]), SAL,
    [c('/service_at_locations', SAL['service_at_locations'],
       [{'id': 'a', 'location_id': 'l1'}, {'id': 'b', 'location_id': 'l2'}],
       [{'id': 'a', 'location_id': 'l3'}])])
rec('array-one-side', 'an array changed on one side only',
    SAL, w(SAL, service_at_locations=[]), w(SAL, name='B'),
    w(SAL, service_at_locations=[], name='B'))

rec('record-added-one-side', 'added on one side only: taken', None, None, B, B)
rec('record-added-both-equal', 'added on both sides, equal: taken', None, B, B, B)
rec('record-added-both-different', 'added on both sides, different: a conflict at "" '
    'and no file', None, B, w(B, name='B'), None, [c('', None, B, w(B, name='B'))])
rec('record-deleted-both', 'deleted on both sides: no file', B, None, None, None)
rec('record-deleted-unchanged', 'deleted on one side, unchanged on the other: no file',
    B, None, B, None)
rec('record-delete-edit', 'deleted on one side, edited on the other: a conflict at '
    '"" and the deletion is kept', B, w(B, name='B'), None, None,
    [c('', B, w(B, name='B'), None)])
rec('record-unchanged', 'nothing changed', B, B, B, B)

# Full records: the merge of valid records stays valid.
svc = S('ms2/service-ms2-consult.json')
rec('valid-set-emptied', 'valid sides whose set merge empties x_categories '
    '(minItems 1): a conflict at /x_categories, which keeps its base',
    w(svc, x_categories=['mhpss', 'health_primary']),
    w(svc, x_categories=['mhpss'], alert='Fermé le vendredi'),
    w(svc, x_categories=['health_primary']),
    w(svc, x_categories=['mhpss', 'health_primary'], alert='Fermé le vendredi'),
    [c('/x_categories', ['mhpss', 'health_primary'], ['mhpss'], ['health_primary'])])
O6 = ['mhpss', 'health_primary', 'health_srh', 'health_hiv_sti', 'gbv',
      'legal_assistance']
T6 = ['mhpss', 'protection', 'education', 'shelter', 'basic_needs',
      'orientation_information']
rec('valid-set-too-long', 'valid sides whose set merge holds 11 categories '
    '(maxItems 10): a conflict at /x_categories, which keeps its base',
    w(svc, x_categories=['mhpss']), w(svc, x_categories=O6),
    w(svc, x_categories=T6, name='Consultations'),
    w(svc, x_categories=['mhpss'], name='Consultations'),
    [c('/x_categories', ['mhpss'], O6, T6)])
con = S('alcs/contact-alcs-marrakech-focal.json')
rec('valid-whole-record', 'valid sides that each remove one of name and title (a '
    'contact needs one): the whole record is a conflict and keeps its base, but '
    'a protective field still takes the more protective candidate',
    con, w(con, name=DEL, x_visibility='coordination'), w(con, title=DEL),
    w(con, x_visibility='coordination'),
    [c('', con, w(con, name=DEL, x_visibility='coordination'), w(con, title=DEL))],
    type='contact')
need = S('dj/need-dj-rabat-birth.json')
nb = w(need, x_admin={'adm1': 'MA-04'})
rec('valid-admin-province', 'one side adds a province of the region, the other moves '
    'the need to another region: the province is a conflict',
    nb, w(nb, x_admin={'adm1': 'MA-04', 'adm2': '04.421'}),
    w(nb, x_admin={'adm1': 'MA-02'}), w(nb, x_admin={'adm1': 'MA-02'}),
    [c('/x_admin/adm2', None, '04.421', None)], type='need')

# ---------------------------------------------------------------------------
# consortium/members.json
M = S('consortium/members.json')
K = {k['org'] + ('-old' if 'revoked' in k else ''): k for k in M['keys']}
def key(name, **kw):
    return w(K[name], **kw)
def mem(keys=None, orgs=None, root=None):
    d = copy.deepcopy(M)
    if keys is not None:
        d['keys'] = keys
    if orgs is not None:
        d['organizations'] = orgs
    if root is not None:
        d['root'] = root
    return d
def mcase(name, desc, base, ours, theirs, merged):
    case = {'description': desc, 'ours': ours, 'theirs': theirs, 'merged': merged}
    if base is not None:
        case['base'] = base
    write('members', name, case)

base_keys = M['keys']
def keys_with(i, entry):
    ks = copy.deepcopy(base_keys)
    ks[i] = entry
    return ks
ms2 = 2  # index of the ms2 key
rv = {'date': '2025-04-01', 'reason': 'Clé compromise'}
mcase('revoke-and-role', 'revocation on one side, role change on the other: both apply',
      M, mem(keys_with(ms2, key('ms2', revoked=rv))),
      mem(keys_with(ms2, key('ms2', role='coordinator'))),
      mem(keys_with(ms2, key('ms2', revoked=rv, role='coordinator'))))
rv2 = {'date': '2025-04-02', 'reason': 'Départ du chargé'}
mcase('revoke-both', 'revoked on both sides, differently: the greater canonical '
      'encoding', M, mem(keys_with(ms2, key('ms2', revoked=rv))),
      mem(keys_with(ms2, key('ms2', revoked=rv2))),
      mem(keys_with(ms2, key('ms2', revoked=rv2))))
mcase('revoke-never-undone', 'a side that drops a revocation does not undo it',
      M, mem(keys_with(1, w(K['mdm-be-old'], revoked=DEL))),
      mem(keys_with(ms2, key('ms2', holder='Nœud MS2, Nador'))),
      mem(keys_with(ms2, key('ms2', holder='Nœud MS2, Nador'))))
mcase('role-same-change', 'the same role change on both sides is taken; holders '
      'changed differently keep the base',
      mem(keys_with(0, key('mdm-be', role='member'))),
      mem(keys_with(0, key('mdm-be', role='coordinator', holder='Hub'))),
      mem(keys_with(0, key('mdm-be', role='coordinator', holder='Serveur'))),
      mem(keys_with(0, key('mdm-be', role='coordinator', holder='Hub de coordination (serveur, Rabat)'))))
mcase('role-demoted', 'a coordinator demoted on one side, renamed on the other',
      M, mem(keys_with(0, key('mdm-be', role='member'))),
      mem(keys_with(0, key('mdm-be', holder='Hub'))),
      mem(keys_with(0, key('mdm-be', role='member', holder='Hub'))))
orgs = M['organizations']
mcase('org-removed', 'an organisation removed on one side, renamed on the other: '
      'removed, with the new name', M,
      mem(orgs=w(orgs, gadem={'name': 'GADEM', 'removed': True})),
      mem(orgs=w(orgs, gadem={'name': 'Groupe antiraciste (GADEM)', 'removed': False})),
      mem(orgs=w(orgs, gadem={'name': 'Groupe antiraciste (GADEM)', 'removed': True})))
mcase('org-removal-stays', 'a removal is never undone by a merge',
      mem(orgs=w(orgs, gadem={'name': 'GADEM', 'removed': True})),
      mem(orgs=w(orgs, gadem={'name': 'GADEM', 'removed': False})),
      mem(orgs=w(orgs, gadem={'name': 'GADEM', 'removed': True}, cefa=DEL)),
      mem(orgs=w(orgs, gadem={'name': 'GADEM', 'removed': True})))
NEW1 = {'holder': 'Nœud GADEM 2', 'key': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI' + 'B' * 43,
        'org': 'gadem', 'role': 'member', 'tls': 'sha256:' + '1' * 64}
NEW2 = {'holder': 'Portable CEFA', 'key': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI' + 'A' * 43,
        'org': 'cefa', 'role': 'member', 'tls': 'sha256:' + '2' * 64}
mcase('keys-added-both', 'different keys added on both sides: the union, base order '
      'first, then the new keys by key', M, mem(base_keys + [NEW1]),
      mem(base_keys + [NEW2]), mem(base_keys + [NEW2, NEW1]))
mcase('keys-added-and-reordered', 'one side reorders the keys, the other adds one',
      M, mem(list(reversed(base_keys))), mem(base_keys + [NEW1]),
      mem(list(reversed(base_keys)) + [NEW1]))
mcase('key-deleted', 'a key deleted on one side stays (a key is revoked, never deleted)',
      M, mem(base_keys[:-1]), mem(keys_with(ms2, key('ms2', holder='X'))),
      mem(keys_with(ms2, key('ms2', holder='X'))))
mcase('key-added-both-different', 'the same key added on both sides with different '
      'holders and roles: the greater holder, the least role', M,
      mem(base_keys + [w(NEW1, holder='A', role='coordinator')]),
      mem(base_keys + [w(NEW1, holder='B')]),
      mem(base_keys + [w(NEW1, holder='B')]))
mcase('orgs-added-both', 'organisations added on both sides', M,
      mem(orgs=w(orgs, cmw={'name': 'Caritas', 'removed': False})),
      mem(orgs=w(orgs, amdh={'name': 'AMDH', 'removed': False})),
      mem(orgs=w(orgs, cmw={'name': 'Caritas', 'removed': False},
                 amdh={'name': 'AMDH', 'removed': False})))
root = M['root']
mcase('root-conflict', 'root changed differently on both sides: the base stays',
      M, mem(root=w(root, threshold=3)), mem(root=w(root, threshold=1)), M)
mcase('root-one-side', 'root changed on one side', M, mem(root=w(root, threshold=3)),
      mem(keys_with(ms2, key('ms2', holder='X'))),
      mem(keys_with(ms2, key('ms2', holder='X')), root=w(root, threshold=3)))

# ---------------------------------------------------------------------------
# consortium/policy.json
POL = {
    'version': 1,
    'write': {'coordinator': ['consortium/**', 'records/**', 'conflicts/**'],
              'member': ['records/{org}/**', 'records/shared/**']},
    'stewards': {'MA-02': None, 'MA-04': None},
    'publish_confirmation': {'categories': ['shelter', 'shelter_gbv'],
                             'populations': ['sex_workers']},
    'visibility': {'service': {'name': 'public', 'x_verified.note': 'consortium',
                               'x_visibility': 'consortium'},
                   'contact': {'name': 'consortium'}},
    'confidential': {'location': {'name': 'consortium'}},
}
def pol(**kw):
    d = copy.deepcopy(POL)
    for path, v in kw.items():
        parts = path.split('__')
        at = d
        for p in parts[:-1]:
            at = at[p]
        if v is DEL:
            at.pop(parts[-1], None)
        else:
            at[parts[-1]] = v
    return d
def pcase(name, desc, base, ours, theirs, merged):
    case = {'description': desc, 'ours': ours, 'theirs': theirs, 'merged': merged}
    if base is not None:
        case['base'] = base
    write('policy', name, case)

pcase('write-both-narrow', 'both sides narrow the member patterns: the intersection',
      POL, pol(write__member=['records/{org}/**']),
      pol(write__member=['records/shared/**']), pol(write__member=[]))
pcase('write-narrow-and-widen', 'one side narrows, the other widens: the intersection',
      POL, pol(write__member=['records/{org}/**']),
      pol(write__member=['records/shared/**', 'records/{org}/**', 'records/x/**']),
      pol(write__member=['records/{org}/**']))
pcase('write-both-narrow-differently', 'both narrow differently: what both keep',
      POL, pol(write__coordinator=['consortium/**', 'records/**']),
      pol(write__coordinator=['records/**', 'conflicts/**']),
      pol(write__coordinator=['records/**']))
pcase('write-one-side', 'one side widens, the other does not touch write: taken',
      POL, pol(write__member=['records/{org}/**', 'records/shared/**', 'exports/**']),
      pol(version=2),
      pol(version=2, write__member=['records/{org}/**', 'records/shared/**', 'exports/**']))
pcase('write-reordered', 'a reordering is no change', POL,
      pol(write__member=['records/shared/**', 'records/{org}/**']),
      pol(write__member=['records/{org}/**']), pol(write__member=['records/{org}/**']))
pcase('visibility-protective', 'a level changed to consortium on one side and '
      'coordination on the other: coordination',
      POL, pol(visibility__service__name='consortium'),
      pol(visibility__service__name='coordination'),
      pol(visibility__service__name='coordination'))
pcase('visibility-one-side', 'a level loosened on one side only: taken; another '
      'field raised on the other', POL, pol(visibility__contact__name='public'),
      pol(visibility__service__x_visibility='coordination'),
      pol(visibility__contact__name='public',
          visibility__service__x_visibility='coordination'))
pcase('visibility-entry-removed', 'an entry removed on one side, changed on the '
      'other: the change (absent is the least protective)',
      POL, pol(visibility__service__name=DEL),
      pol(visibility__service__name='consortium'),
      pol(visibility__service__name='consortium'))
pcase('confidential-protective', 'the confidential raises take the most protective '
      'level too', POL, pol(confidential__location__name='coordination'),
      pol(confidential__location__name='public'),
      pol(confidential__location__name='coordination'))
pcase('confirmation-union', 'categories needing a confirmation added on both sides: '
      'the union', POL,
      pol(publish_confirmation__categories=['shelter', 'shelter_gbv', 'trafficking']),
      pol(publish_confirmation__categories=['gbv', 'shelter', 'shelter_gbv']),
      pol(publish_confirmation__categories=['gbv', 'shelter', 'shelter_gbv', 'trafficking']))
pcase('confirmation-removed-one-side', 'a category removed on one side only: removed',
      POL, pol(publish_confirmation__categories=['shelter']),
      pol(publish_confirmation__populations=['msm', 'sex_workers']),
      pol(publish_confirmation__categories=['shelter'],
          publish_confirmation__populations=['msm', 'sex_workers']))
pcase('confirmation-both-changed', 'removed on one side while the other adds: the '
      'union keeps it', POL, pol(publish_confirmation__categories=['shelter']),
      pol(publish_confirmation__categories=['shelter', 'shelter_gbv', 'trafficking']),
      pol(publish_confirmation__categories=['shelter', 'shelter_gbv', 'trafficking']))
pcase('stewards-conflict', 'a steward set differently on both sides: the base stays; '
      'another set on one side', POL,
      pol(**{'stewards__MA-04': 'ms2', 'stewards__MA-02': 'dj'}),
      pol(**{'stewards__MA-04': 'dj'}), pol(**{'stewards__MA-02': 'dj'}))
pcase('version-conflict', 'the version changed differently: the base stays',
      POL, pol(version=2), pol(version=3), POL)

# ---------------------------------------------------------------------------
# Seeds for tests/fuzz/fuzz_merge.c: <selector> base NUL ours NUL theirs.
TYPES = ['contact', 'location', 'need', 'organization', 'referral_flow',
         'referral_pathway', 'service', 'staffcare_session']
cdir = os.path.join(OUT, 'corpus')
os.makedirs(cdir, exist_ok=True)
def enc(v):
    return b'' if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True).encode()
for kind, mode in (('records', 0), ('members', 2), ('policy', 3)):
    for name in sorted(os.listdir(os.path.join(OUT, kind))):
        case = json.load(open(os.path.join(OUT, kind, name)))
        sel = (mode << 3) | TYPES.index(case.get('type', 'service'))
        blob = bytes([sel]) + b'\0'.join(enc(case.get(k)) for k in ('base', 'ours', 'theirs'))
        with open(os.path.join(cdir, kind + '-' + name[:-5]), 'wb') as f:
            f.write(blob)
