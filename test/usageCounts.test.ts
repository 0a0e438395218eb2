/** Arithmetic on a call's usage counts (src/domain/usageCounts.ts). */
import { describe, expect, it } from 'vitest';
import { inputOnly, usageBeyond, withoutInput } from '../src/domain/usageCounts.ts';

const realtime = {
  input_tokens: 7391,
  cache_read_tokens: 5376,
  cache_audio_read_tokens: 4352,
  input_audio_tokens: 6184,
  cache_write_tokens: 0,
  cache_write_1h_tokens: 0,
  output_tokens: 1153,
  output_audio_tokens: 912,
  requests: 1,
};

describe('the input of a usage', () => {
  it('is the prompt with every part of it: cached, written to the cache, audio, cached audio', () => {
    expect(inputOnly(realtime)).toEqual({
      input_tokens: 7391,
      cache_read_tokens: 5376,
      cache_audio_read_tokens: 4352,
      input_audio_tokens: 6184,
      cache_write_tokens: 0,
      cache_write_1h_tokens: 0,
    });
  });

  it('and the rest of the usage add up to the whole', () => {
    expect({ ...inputOnly(realtime), ...withoutInput(realtime) }).toEqual(realtime);
    expect(usageBeyond(realtime, inputOnly(realtime))).toMatchObject({
      input_tokens: 0,
      output_tokens: 1153,
    });
  });

  it('whose parts overlap (audio among the cache reads) is all beyond nothing recorded', () => {
    const usage = {
      input_tokens: 100,
      cache_read_tokens: 80,
      cache_audio_read_tokens: 75,
      input_audio_tokens: 90,
    };
    expect(usageBeyond(usage, {})).toEqual(usage);
    expect(usageBeyond(realtime, {})).toEqual(realtime);
    expect(usageBeyond(realtime, { input_tokens: 7391 - 100, cache_read_tokens: 5376 - 100 })).toMatchObject({
      input_tokens: 100,
      cache_read_tokens: 100,
    });
  });
});
