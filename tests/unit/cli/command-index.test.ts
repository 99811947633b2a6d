/**
 * The CLI registers only the command a run names (cli/main.ts COMMAND_INDEX), so the index's words
 * must be exactly what each class answers to: a mismatch would route a command to the wrong class
 * or to the slow path that registers every command.
 */
import { COMMAND_INDEX } from '../../../cli/main';

test('each index entry names its class by the words of the class itself, once', async () => {
  const seen = new Set<string>();
  for (const entry of COMMAND_INDEX) {
    const command = await entry.load();
    expect({ words: entry.words, paths: command.paths }).toEqual({
      words: entry.words,
      paths: [entry.words.split(' ')],
    });
    expect(seen.has(entry.words)).toBe(false);
    seen.add(entry.words);
  }
});
