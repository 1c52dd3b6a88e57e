// An eslint rule of the project's own: no import cycle among agent/'s
// modules, also inside a folder and also through `import type` or a dynamic
// import(). Each import is followed on disk (TypeScript's import scanner over
// every file it reaches); when the imported module leads back to the file
// being linted, the import is reported with the whole loop.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import ts from 'typescript';

/** path → { mtimeMs, deps }: each file is scanned once per change. */
const scanned = new Map();

function resolveSpecifier(from, specifier) {
  if (!specifier.startsWith('.')) return undefined;
  const path = resolve(dirname(from), specifier).replace(/\.js$/, '.ts');
  return existsSync(path) ? path : undefined;
}

function importsOf(file, text) {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((f) => resolveSpecifier(file, f.fileName))
    .filter((p) => p !== undefined);
}

function depsOnDisk(file) {
  let mtimeMs;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    return [];
  }
  const hit = scanned.get(file);
  if (hit && hit.mtimeMs === mtimeMs) return hit.deps;
  const deps = importsOf(file, readFileSync(file, 'utf8'));
  scanned.set(file, { mtimeMs, deps });
  return deps;
}

/** The shortest import path from `start` to `target` (both included), or undefined. */
function pathBetween(start, target) {
  const previous = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const file = queue.shift();
    if (file === target) {
      const path = [];
      for (let f = file; f !== undefined; f = previous.get(f)) path.unshift(f);
      return path;
    }
    for (const dep of depsOnDisk(file)) {
      if (!previous.has(dep)) {
        previous.set(dep, file);
        queue.push(dep);
      }
    }
  }
  return undefined;
}

export const noImportCycle = {
  meta: {
    type: 'problem',
    docs: { description: 'Forbids import cycles, type-only and dynamic imports included' },
    messages: { cycle: 'import cycle: {{loop}}' },
    schema: [],
  },
  create(context) {
    const file = resolve(context.filename);
    const root = context.cwd;
    const check = (node, source) => {
      if (!source || typeof source.value !== 'string') return;
      const target = resolveSpecifier(file, source.value);
      if (!target) return;
      const back = target === file ? [file] : pathBetween(target, file);
      if (!back) return;
      const loop = [file, ...back].map((f) => relative(root, f)).join(' → ');
      context.report({ node, messageId: 'cycle', data: { loop } });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source),
    };
  },
};
