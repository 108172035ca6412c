"""Writes test/golden/html-unescape.json: Python's html.unescape on every HTML5 named reference (2,231 names,
with and without ';', followed by a letter to exercise longest-prefix matching), numeric references on the edge
rules, and mixed strings. test/tokenizer.test.ts checks src/io/clip-bpe.ts's htmlUnescape against it.
Standard library only: python3 tools/html_unescape_golden.py"""
import html
import html.entities
import json
import os

cases = []
for name in sorted(html.entities.html5):
    ref = '&' + name
    cases.append(ref)
    cases.append(ref + 'x')
    if not name.endswith(';'):
        cases.append(ref + ';x')
for n in [0, 1, 8, 9, 10, 11, 13, 31, 65, 127, 128, 129, 141, 150, 159, 160, 0xD800, 0xDFFF, 0xFDD0, 0xFFFE,
          0x1FFFF, 0x10FFFF, 0x110000, 99999999]:
    cases += [f'&#{n};', f'&#{n}', f'&#x{n:x};', f'&#X{n:X}']
cases += ['fish &amp; chips', '&ampx', '&notit;', '&notin;', '&unknown;', '&&amp;;', 'a&b', '&#;', '&#x;',
          '&amp;amp;', '&lt;p&gt;', 'caf&eacute; &copy 2024', '&AMP', '&Amp;', '&nbsp&nbsp;']
golden = {'source': 'Python ' + '.'.join(map(str, __import__('sys').version_info[:3])) + ' html.unescape',
          'names': len(html.entities.html5), 'cases': [[c, html.unescape(c)] for c in cases]}
out = os.path.join(os.path.dirname(__file__), '..', 'test', 'golden', 'html-unescape.json')
with open(out, 'w', encoding='utf-8') as f:
    json.dump(golden, f, ensure_ascii=True, indent=0)
    f.write('\n')
print(f'{out}: {len(cases)} cases over {len(html.entities.html5)} names')
