// Formatting for the TypeScript sources, tests, benchmark and build scripts
// (`make fmt` writes it, `make lint` checks it): close to the style the code
// was written in, so reformatting changes as few lines as possible.
export default {
  printWidth: 120,
  singleQuote: true,
  trailingComma: 'all',
  arrowParens: 'always',
};
