// Lint rules: typescript-eslint's recommended set, with the few exceptions this code base relies on stated here.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'build/', 'dev/', 'web/tokenizer.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
    rules: {
      // JSON from users and test fixtures is typed `any` at the boundary on purpose, then checked field by field.
      '@typescript-eslint/no-explicit-any': 'off',
      // Non-null assertions mark indices proven in range by the surrounding loop (noUncheckedIndexedAccess).
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      // Prettier wraps code at 120 columns but never splits a string; long messages may run to 150.
      'max-len': [
        'error',
        { code: 150, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreUrls: true, ignoreRegExpLiterals: true },
      ],
    },
  },
);
