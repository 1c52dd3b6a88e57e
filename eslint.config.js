// Lint rules for the TypeScript sources, tests, benchmark and build scripts:
// typescript-eslint's recommended set plus the type-aware rules that catch real
// defects in an agent that mostly awaits I/O (a promise nobody awaits, a
// promise passed where a callback's result is ignored); the layers of agent/
// and the size limits that docs/architecture.md describes.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { noImportCycle } from './lint/no-import-cycle.js';

// agent/'s folders from the top down: a folder imports only folders after
// it. Tiers: cli | report, renewal | acme, stepca, trust, reload, challenge, store |
// config, pki, lib.
const LAYERS = [
  'cli',
  'report',
  'renewal',
  'acme',
  'stepca',
  'trust',
  'reload',
  'challenge',
  'dns',
  'store',
  'config',
  'pki',
  'lib',
];

/** For each folder, the folders above it: static, type-only, re-exports and import() alike. */
const layerRules = LAYERS.slice(1).map((folder, i) => {
  const above = LAYERS.slice(0, i + 1);
  const message = `agent/${folder} is below ${above.join(', ')} (docs/architecture.md): imports run downwards only`;
  return {
    files: [`agent/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: above.flatMap((f) => [`../${f}`, `../${f}/*`]), message }] },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: `ImportExpression[source.value=/^\\.\\.\\/(${above.join('|')})\\//]`, message },
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ['node_modules/', 'bundle/out/', 'bench/out/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: {
        // vitest.faults.config.ts is outside tsconfig.json's include.
        projectService: { allowDefaultProject: ['vitest.faults.config.ts'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { fixStyle: 'inline-type-imports', disallowTypeAnnotations: false },
      ],
      // Terminal colour codes are matched on purpose (ANSI escapes start with \x1b).
      'no-control-regex': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  ...layerRules,
  {
    // Sizes: a file under 400 lines, a function under 80 (neither counting
    // blank lines and comments), a bounded number of paths through a function.
    // The help text is one table of strings.
    files: ['agent/**/*.ts'],
    ignores: ['agent/cli/help.ts'],
    plugins: { local: { rules: { 'no-import-cycle': noImportCycle } } },
    rules: {
      'local/no-import-cycle': 'error',
      'max-lines': ['error', { max: 400, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
      complexity: ['error', 20],
    },
  },
  {
    // Tests build malformed documents on purpose.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { console: 'readonly', process: 'readonly', URL: 'readonly' } },
  },
  {
    // The bundle's loader is CommonJS (see its header).
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { process: 'readonly', require: 'readonly', __filename: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
