// examples/ci/ stays runnable: each pipeline parses as YAML and calls `lorafuse client merge` only with
// options the client declares (with --wait, --download and --report), and the example recipe is valid.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseCommand } from '../../src/cli/args.ts';
import { CLIENT_SPECS } from '../../src/cli/client/specs.ts';
import { parseRecipe } from '../../src/merge/index.ts';
import { REPO_ROOT } from '../helpers/golden.ts';

const DIR = path.join(REPO_ROOT, 'examples', 'ci');

/** The words of every `lorafuse client merge ...` command in a pipeline file, quotes removed. */
function clientMergeCommands(text: string): string[][] {
  const folded = text.replace(
    />\n((?:\s+.*\n)+)/g,
    (_, block: string) => `${block.replace(/\s*\n\s*/g, ' ')}\n`,
  );
  return [...folded.matchAll(/lorafuse client merge ([^\n>]*)/g)].map((m) =>
    (m[1].match(/"[^"]*"|\S+/g) ?? []).map((word) => word.replace(/^"|"$/g, '')),
  );
}

describe('examples/ci', () => {
  for (const file of ['merge-adapters.yml', '.gitlab-ci.yml']) {
    it(`${file} parses and runs lorafuse client merge with declared options`, () => {
      const text = readFileSync(path.join(DIR, file), 'utf8');
      assert.equal(typeof parseYaml(text), 'object');
      const commands = clientMergeCommands(text);
      assert.equal(commands.length, 1, `${file}: one client merge command`);
      const parsed = parseCommand(CLIENT_SPECS.merge, commands[0]);
      assert.deepEqual(parsed.positionals, ['merge/recipe.yaml']);
      assert.equal(parsed.values.wait, true);
      assert.equal(parsed.values.download, 'out/merged');
      assert.equal(parsed.values.report, 'out/report.json');
      assert.match(text, /LORAFUSE_URL/);
      assert.match(text, /LORAFUSE_API_KEY/);
    });
  }

  it('recipe.yaml is a valid recipe over three adapters', () => {
    const recipe = parseRecipe(readFileSync(path.join(DIR, 'recipe.yaml'), 'utf8'));
    assert.equal(recipe.models.length, 3);
  });

  it('the command extraction can fail: an unknown option in a pipeline is caught', () => {
    const [words] = clientMergeCommands('run: >\n  lorafuse client merge r.yaml\n  --wiat\n');
    assert.throws(() => parseCommand(CLIENT_SPECS.merge, words), { message: /did you mean --wait/ });
  });
});
