import { describe, expect, it } from 'vitest';
import { anthropicUsage, extractUsage, StreamUsage } from '../../sdk/src/usage.ts';

describe('usage extraction', () => {
  it('keeps OpenAI chat prompt_tokens as the input total (cached tokens are part of it)', () => {
    const completion = {
      usage: {
        prompt_tokens: 1200,
        completion_tokens: 300,
        total_tokens: 1500,
        prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 100, audio_tokens: 0 },
      },
    };
    expect(extractUsage('openai', completion)).toEqual({
      input_tokens: 1200,
      output_tokens: 300,
      cache_read_tokens: 1024,
    });
  });

  it('reads the OpenAI Responses API usage', () => {
    const response = {
      usage: { input_tokens: 50, input_tokens_details: { cached_tokens: 20 }, output_tokens: 7 },
    };
    expect(extractUsage('openai', response)).toEqual({
      input_tokens: 50,
      output_tokens: 7,
      cache_read_tokens: 20,
    });
  });

  it('caps cache writes an OpenAI-compatible server reports at the text input beside reads and audio', () => {
    // 60 writes and 60 audio cannot both be among 100 prompt tokens: Tally would refuse the event.
    const usage = {
      prompt_tokens: 100,
      completion_tokens: 5,
      prompt_tokens_details: { cache_write_tokens: 60, audio_tokens: 60 },
    };
    expect(extractUsage('openai', { usage })).toEqual({
      input_tokens: 100,
      output_tokens: 5,
      cache_write_tokens: 40,
      input_audio_tokens: 60,
    });
  });

  it('reads the OpenAI Realtime usage: the cached audio among the cache reads and among the audio', () => {
    // A Realtime `response.done` event's response (genai-prices' "realtime" extractor reads the same).
    const realtime = {
      object: 'realtime.response',
      usage: {
        total_tokens: 8544,
        input_tokens: 7391,
        output_tokens: 1153,
        input_token_details: {
          text_tokens: 1207,
          audio_tokens: 6184,
          image_tokens: 0,
          cached_tokens: 5376,
          cached_tokens_details: { text_tokens: 1024, audio_tokens: 4352, image_tokens: 0 },
        },
        output_token_details: { text_tokens: 241, audio_tokens: 912 },
      },
    };
    const usage = {
      input_tokens: 7391,
      output_tokens: 1153,
      cache_read_tokens: 5376,
      cache_audio_read_tokens: 4352,
      input_audio_tokens: 6184,
      output_audio_tokens: 912,
    };
    expect(extractUsage('openai', realtime)).toEqual(usage);
    const stream = new StreamUsage('openai');
    stream.observe({ type: 'response.done', response: realtime });
    expect(stream.usage).toEqual(usage);
    // A breakdown above the counts it is among (malformed) is capped at them, so Tally takes the event.
    const over = {
      ...realtime.usage,
      input_token_details: {
        cached_tokens: 300,
        audio_tokens: 200,
        cached_tokens_details: { audio_tokens: 900 },
      },
    };
    expect(extractUsage('openai', { usage: over })).toMatchObject({
      cache_read_tokens: 300,
      input_audio_tokens: 200,
      cache_audio_read_tokens: 200,
    });
  });

  it('adds Anthropic cache reads and writes to its uncached input_tokens', () => {
    const message = {
      usage: {
        input_tokens: 10,
        cache_read_input_tokens: 2000,
        cache_creation_input_tokens: 500,
        output_tokens: 42,
        server_tool_use: { web_search_requests: 2 },
      },
    };
    expect(extractUsage('anthropic', message)).toEqual({
      input_tokens: 2510,
      output_tokens: 42,
      cache_read_tokens: 2000,
      cache_write_tokens: 500,
      web_searches: 2,
    });
  });

  it("reads Anthropic's 1-hour cache writes among its cache writes", () => {
    const message = {
      usage: {
        input_tokens: 10,
        cache_read_input_tokens: 2000,
        cache_creation_input_tokens: 500,
        cache_creation: { ephemeral_5m_input_tokens: 200, ephemeral_1h_input_tokens: 300 },
        output_tokens: 42,
      },
    };
    expect(extractUsage('anthropic', message)).toEqual({
      input_tokens: 2510,
      output_tokens: 42,
      cache_read_tokens: 2000,
      cache_write_tokens: 500,
      cache_write_1h_tokens: 300,
    });
    // A breakdown above the total (malformed) is capped at it, so Tally still takes the event.
    const over = { ...message.usage, cache_creation: { ephemeral_1h_input_tokens: 900 } };
    expect(anthropicUsage(over)).toMatchObject({ cache_write_tokens: 500, cache_write_1h_tokens: 500 });
  });

  it('answers null when there is no usage, and ignores counts that are not whole numbers', () => {
    expect(extractUsage('openai', { choices: [] })).toBeNull();
    expect(extractUsage('anthropic', null)).toBeNull();
    expect(anthropicUsage({ input_tokens: -3, output_tokens: 1.5 })).toBeNull();
  });
});

describe('stream usage', () => {
  it('estimates OpenAI output while streaming, then takes the exact usage chunk', () => {
    const stream = new StreamUsage('openai');
    stream.observe({ choices: [{ delta: { role: 'assistant', content: '' } }] });
    stream.observe({ choices: [{ delta: { content: 'Hello there' } }] });
    // 11 characters in one chunk: at least 1 token, 11 / 5 = 2 by characters.
    expect(stream.usage).toEqual({ output_tokens: 2 });
    expect(stream.exact).toBe(false);
    stream.observe({
      choices: [{ delta: { tool_calls: [{ function: { arguments: '{"a":1}' } }] } }],
    });
    expect(stream.usage).toEqual({ output_tokens: 3 });
    stream.observe({
      choices: [],
      usage: { prompt_tokens: 80, completion_tokens: 4, prompt_tokens_details: { cached_tokens: 64 } },
    });
    expect(stream.exact).toBe(true);
    expect(stream.usage).toEqual({ input_tokens: 80, output_tokens: 4, cache_read_tokens: 64 });
  });

  it('reads the Responses API completion event', () => {
    const stream = new StreamUsage('openai');
    stream.observe({ type: 'response.output_text.delta', delta: 'abcdefgh' });
    expect(stream.usage).toEqual({ output_tokens: 1 });
    stream.observe({
      type: 'response.completed',
      response: { usage: { input_tokens: 9, output_tokens: 2 } },
    });
    expect(stream.usage).toEqual({ input_tokens: 9, output_tokens: 2 });
  });

  it('takes Anthropic input from message_start and cumulative output from message_delta', () => {
    const stream = new StreamUsage('anthropic');
    stream.observe({
      type: 'message_start',
      message: {
        usage: {
          input_tokens: 5,
          cache_read_input_tokens: 100,
          cache_creation_input_tokens: 0,
          output_tokens: 1,
        },
      },
    });
    expect(stream.usage).toEqual({ input_tokens: 105, cache_read_tokens: 100 });
    stream.observe({ type: 'content_block_delta', delta: { type: 'text_delta', text: 'Hi, how can I' } });
    expect(stream.usage).toEqual({ input_tokens: 105, cache_read_tokens: 100, output_tokens: 2 });
    stream.observe({
      type: 'message_delta',
      delta: { stop_reason: 'end_turn' },
      usage: { output_tokens: 6 },
    });
    expect(stream.exact).toBe(true);
    expect(stream.usage).toEqual({ input_tokens: 105, cache_read_tokens: 100, output_tokens: 6 });
  });

  it('keeps the 1-hour cache writes of message_start when message_delta repeats only the totals', () => {
    const stream = new StreamUsage('anthropic');
    stream.observe({
      type: 'message_start',
      message: {
        usage: {
          input_tokens: 5,
          cache_read_input_tokens: 100,
          cache_creation_input_tokens: 400,
          cache_creation: { ephemeral_5m_input_tokens: 150, ephemeral_1h_input_tokens: 250 },
          output_tokens: 1,
        },
      },
    });
    const input = {
      input_tokens: 505,
      cache_read_tokens: 100,
      cache_write_tokens: 400,
      cache_write_1h_tokens: 250,
    };
    expect(stream.usage).toEqual(input);
    stream.observe({
      type: 'message_delta',
      delta: { stop_reason: 'end_turn' },
      usage: {
        input_tokens: 5,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 400,
        output_tokens: 6,
      },
    });
    expect(stream.exact).toBe(true);
    expect(stream.usage).toEqual({ ...input, output_tokens: 6 });
  });
});
