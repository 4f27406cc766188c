// ESLint configuration for the staff app's JavaScript (scripts/lint.sh runs
// it). The pinned eslint, @eslint/js and globals live in .cache/npm-eslint
// (scripts/test-deps.sh installs them), not beside this file, so they are
// imported by path.
const mods = new URL('../.cache/npm-eslint/node_modules/', import.meta.url);
const js = (await import(new URL('@eslint/js/src/index.js', mods))).default;
const globals = (await import(new URL('globals/index.js', mods))).default;

// The pages load plain scripts (no modules, no build step), each with
// 'use strict'; undefined and unused names are the mistakes worth catching.
const strict = {
  ...js.configs.recommended.rules,
  'no-unused-vars': ['error', { args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'none' }],
  'no-undef': 'error',
};

export default [
  {
    files: ['httpapi/ui/static/*.js', 'devhealth/static/*.js', 'pilot/web/static/*.js'],
    ignores: ['httpapi/ui/static/sw.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'script',
      globals: { ...globals.browser, VakaMap: 'readonly' },
    },
    rules: strict,
  },
  {
    // The service worker runs in its own global scope (self, clients, registration).
    files: ['httpapi/ui/static/sw.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'script',
      globals: { ...globals.serviceworker },
    },
    rules: strict,
  },
  {
    // The SCAIP test's alarm unit runs under Node.
    files: ['scaipsip/testdata/*.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'commonjs',
      globals: { ...globals.node },
    },
    rules: strict,
  },
];
