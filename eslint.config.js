import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/, lowest first: a folder may import only from the folders before it (and
 * itself). src/index.ts, the public API, gathers them all. docs/ARCHITECTURE.md draws this order;
 * test/lint-layers.test.ts checks that an import climbing it fails `npm run lint`.
 */
export const LAYERS = [
  'common',
  'sockets',
  'observe',
  'sandbox',
  'traffic',
  'model',
  'report',
  'lab',
  'exporter',
  'ui',
  'cli',
];

/** For each layer, the rule that refuses imports (static, type-only, or dynamic) of a later layer. */
const layerRules = LAYERS.slice(0, -1).map((layer, i) => {
  const above = LAYERS.slice(i + 1);
  const climbs = `^(\\.\\./)+(${above.join('|')})/`;
  const message = `${layer}/ may import only from ${LAYERS.slice(0, i).join(', ') || 'no other layer'} (the layer order in eslint.config.js and docs/ARCHITECTURE.md)`;
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: climbs, message }] }],
      'no-restricted-syntax': [
        'error',
        { selector: `ImportExpression > Literal[value=/${climbs.replaceAll('/', '\\/')}/]`, message },
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'artifacts/**', 'src/ui/vendor/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // A longer function says why next to it (an eslint-disable-next-line with the reason above it).
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 120, skipBlankLines: true, skipComments: true }],
    },
  },
  ...layerRules,
);
