import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // service-lb-ipam-controller is the proof that the public API is enough: it may import
    // lib/ only through the two entry points `ts-kcm` (lib/index.ts) and `ts-kcm/testing`.
    files: ['controllers/lbipam/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+lib/(?!(index|testing)\\.js$)',
              message:
                'controllers/lbipam uses only the public API: import ../../lib/index.js or ../../lib/testing.js',
            },
            {
              regex: '^ts-kcm/(?!testing$)',
              message: 'only the entry points ts-kcm and ts-kcm/testing are public',
            },
          ],
        },
      ],
    },
  },
);
