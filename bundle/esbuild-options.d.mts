// Types of bundle/esbuild-options.mjs for the TypeScript that imports it.
import type { BuildOptions } from 'esbuild';

export declare const nodeEsm: Pick<BuildOptions, 'bundle' | 'platform' | 'format' | 'target' | 'logLevel'>;
export declare const requireBanner: string;
