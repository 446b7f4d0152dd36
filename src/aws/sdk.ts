import { createRequire } from 'node:module';

/**
 * How the AWS SDK's client packages are loaded. They are CommonJS packages without a
 * `"type"`, and Node's `import()` of one first compiles its source to look for ES module
 * syntax (module-syntax detection, on by default since Node 20.19 / 22.7) and scans it for
 * its export names (cjs-module-lexer), then loads it with the CommonJS loader anyway:
 * measured on the shared 2-core machine (Node 20.20, 2026-12-02), `@aws-sdk/client-ec2`
 * (2 MB) took 0.45 s by `import()` against 0.2-0.25 s by `require`, `@aws-sdk/client-s3`
 * 0.17 s against 0.1 s. A package loaded by `require` and then imported pays the
 * detection and the scan on the first `import()` all the same, so every load of a package
 * in a process must take the same way: this module is that way.
 *
 * The operator's CLI process (an esbuild bundle of the toolkit, dist/cli/, that leaves
 * the SDK's packages in node_modules) switches to `require` at start
 * ({@link loadSdkWithRequire}, src/cli/main.ts `runCli`). The node agent is one
 * esbuild bundle, in which `import()` of a bundled package costs nothing of the sort, and
 * keeps `import()`; so do in-process callers (tests, benchmarks) that do not switch.
 */

let load: NodeJS.Require | undefined;

/**
 * From now on, this process loads the SDK's packages with `require` (resolved from this
 * toolkit's own node_modules). Call it once at the start of a process, before any package
 * is loaded; a package imported before it would be loaded a second time.
 */
export function loadSdkWithRequire(): void {
  load ??= createRequire(import.meta.url);
}

/**
 * Loads one SDK package: by `require` after {@link loadSdkWithRequire}, otherwise by
 * `viaImport` (which must import the package `id` names; a static specifier, so a bundler
 * sees it).
 */
export function sdkPackage<T>(id: string, viaImport: () => Promise<T>): Promise<T> {
  return load ? Promise.resolve(load(id) as T) : viaImport();
}

/** `@aws-sdk/client-s3`, loaded as {@link sdkPackage} says. */
export function s3Sdk(): Promise<typeof import('@aws-sdk/client-s3')> {
  return sdkPackage('@aws-sdk/client-s3', () => import('@aws-sdk/client-s3'));
}

/** `@aws-sdk/client-kms`, loaded as {@link sdkPackage} says. */
export function kmsSdk(): Promise<typeof import('@aws-sdk/client-kms')> {
  return sdkPackage('@aws-sdk/client-kms', () => import('@aws-sdk/client-kms'));
}
