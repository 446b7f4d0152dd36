/**
 * The quick start, .ci/check-tools and platform/terraform/versions.tf agree on what
 * `make local` needs (issue 11 item 16), and the README's relative links resolve inside
 * the repository.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from '../helpers/cli.js';

const read = (rel: string) => readFileSync(path.join(REPO, rel), 'utf8');

test('README, check-tools and versions.tf name the same minimum Terraform: 1.10', () => {
  expect(read('README.md')).toMatch(/`terraform` 1\.10\+/);
  expect(read('.ci/check-tools')).toMatch(/Terraform 1\.10\+/);
  expect(read('platform/terraform/versions.tf')).toMatch(/required_version = ">= 1\.10"/);
  expect(read('src/terraform/driver.ts')).toMatch(/MIN_VERSION: \[number, number\] = \[1, 10\]/);
});

test('the quick start names every tool make local runs, ssh-keygen included', () => {
  const quick = read('README.md').split('## Quick start')[1]!.split('\n## ')[0]!;
  for (const tool of ['Node.js', 'terraform', 'moto_server', 'ssh-keygen']) expect(quick).toContain(tool);
  expect(read('.ci/check-tools')).toMatch(/need ssh-keygen/);
});

test("the README's relative links resolve inside the repository", () => {
  const links = [...read('README.md').matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)]
    .map((m) => m[1]!)
    .filter((l) => !/^[a-z]+:/.test(l));
  expect(links.length).toBeGreaterThan(0);
  for (const l of links) {
    const target = path.resolve(REPO, l);
    expect(target.startsWith(`${REPO}${path.sep}`) ? target : `outside the repository: ${l}`).toBe(target);
    expect(existsSync(target) ? l : `missing: ${l}`).toBe(l);
  }
});
