// Bastion driven by the official OpenAI JavaScript SDK, as an application would drive OpenAI.
// Run by Tests/Silo/Api/OpenAiJsSdkTests.cs against a test silo; by hand:
//   BASTION_BASE_URL=https://127.0.0.1:PORT/v1 BASTION_API_KEY=bst_... NODE_EXTRA_CA_CERTS=ca.pem node --test
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

const baseURL = process.env.BASTION_BASE_URL;
const apiKey = process.env.BASTION_API_KEY;
const model = process.env.BASTION_MODEL ?? 'bastion-tiny-gpt2';
assert.ok(baseURL && apiKey, 'set BASTION_BASE_URL (ending in /v1) and BASTION_API_KEY');

// No retries: a refused request must surface at once, not after the SDK's backoff.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello!' }];

test('an unknown model is a NotFoundError carrying the status, the real message, the type and the code', async () => {
  const error = await client.chat.completions.create({ model: 'no-such-model', messages, max_tokens: 2 }).then(
    () => assert.fail('the request succeeded'),
    (e) => e,
  );
  assert.ok(error instanceof OpenAI.NotFoundError, `got ${error?.constructor?.name}: ${error?.message}`);
  assert.equal(error.status, 404);
  assert.equal(error.code, 'model_not_found');
  assert.equal(error.type, 'invalid_request_error');
  assert.match(error.message, /no-such-model/);
  assert.match(error.message, /does not exist/);
});

test('a bad key is an AuthenticationError', async () => {
  const stranger = new OpenAI({ baseURL, apiKey: 'bst_not-a-key', maxRetries: 0 });
  const error = await stranger.models.list().then(() => assert.fail('the request succeeded'), (e) => e);
  assert.ok(error instanceof OpenAI.AuthenticationError, `got ${error?.constructor?.name}: ${error?.message}`);
  assert.equal(error.status, 401);
  assert.equal(error.type, 'authentication_error');
});

test('models.list() and models.retrieve(id) describe the model', async () => {
  const ids = [];
  for await (const entry of client.models.list()) {
    ids.push(entry.id);
  }
  assert.ok(ids.includes(model), `listed: ${ids.join(', ')}`);

  const one = await client.models.retrieve(model);
  assert.equal(one.id, model);
  assert.equal(one.object, 'model');
  assert.equal(one.owned_by, 'bastion');
  assert.equal(typeof one.created, 'number');
  assert.ok(one.context_length > 0);

  await assert.rejects(client.models.retrieve('no-such-model'), OpenAI.NotFoundError);
});

test('a completion has text and exact usage', async () => {
  const completion = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5, temperature: 0 });
  assert.equal(completion.object, 'text_completion');
  assert.equal(completion.model, model);
  assert.equal(completion.choices.length, 1);
  assert.equal(typeof completion.choices[0].text, 'string');
  assert.ok(completion.usage.completion_tokens >= 1 && completion.usage.completion_tokens <= 5);
  assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
});

test('a streamed chat completion says what the whole one says', async () => {
  const whole = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0 });
  assert.equal(whole.choices[0].message.role, 'assistant');

  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finishReason = null;
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    finishReason ??= chunk.choices[0]?.finish_reason ?? null;
    usage ??= chunk.usage ?? null;
  }
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finishReason, whole.choices[0].finish_reason);
  assert.deepEqual(usage, whole.usage);
});

test('chat logprobs: each generated token with its logprob, bytes and the top 2 alternatives', async () => {
  const completion = await client.chat.completions.create({ model, messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 2 });
  const content = completion.choices[0].logprobs?.content;
  assert.ok(Array.isArray(content), `choices[0].logprobs.content is missing: ${JSON.stringify(completion.choices[0])}`);
  assert.equal(content.length, completion.usage.completion_tokens);
  assert.equal(content.map((t) => t.token).join(''), completion.choices[0].message.content);
  for (const token of content) {
    assert.equal(typeof token.token, 'string');
    assert.ok(token.logprob <= 0, `logprob ${token.logprob}`);
    assert.ok(Array.isArray(token.bytes));
    assert.equal(token.top_logprobs.length, 2);
    // Greedy: the chosen token is the most likely one.
    assert.ok(token.top_logprobs[0].logprob >= token.top_logprobs[1].logprob);
    assert.ok(Math.abs(token.top_logprobs[0].logprob - token.logprob) < 1e-4);
  }
});

test('n: 2 gives two choices, indexed 0 and 1', async () => {
  const completion = await client.chat.completions.create({ model, messages, max_tokens: 3, n: 2, temperature: 1, seed: 7 });
  assert.deepEqual(completion.choices.map((c) => c.index), [0, 1]);
  for (const choice of completion.choices) {
    assert.equal(choice.message.role, 'assistant');
    assert.equal(typeof choice.message.content, 'string');
  }
});
