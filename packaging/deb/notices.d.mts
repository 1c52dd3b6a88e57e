// Types for packaging/deb/notices.mjs, which the packaging test imports.
export declare function bundledPackages(metaFile: string): string[];
