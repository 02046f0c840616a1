/**
 * show(figure) under the tslab kernel (src/report/notebook.ts): one display_data message with
 * the Plotly MIME type (interactive where a Plotly renderer exists) and the PNG fallback when
 * Chromium is there; no plotly.js embedded (the message stays small).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeKernelExporter, show } from '../src/report/notebook.js';

test('show() in a tslab kernel: Plotly JSON + PNG fallback + text in one bundle, without plotly.js', async () => {
  const sent: { data: Record<string, unknown> }[] = [];
  const single: string[] = [];
  const display = {
    html: () => single.push('html'),
    png: () => single.push('png'),
    raw: (t: string) => single.push(t),
  };
  (globalThis as Record<string, unknown>).__tslab__ = {
    require: (id: string) => {
      if (id === 'tslab') return { display };
      if (id === 'tslab/dist/jupyter')
        return { lastWriteDisplayData: (c: { data: Record<string, unknown> }) => sent.push(c) };
      throw new Error(`unexpected require ${id}`);
    },
  };
  try {
    const figure = {
      data: [{ type: 'scatter', x: [1, 2, 3], y: [3, 1, 2], name: 'a' }],
      layout: { title: { text: 'Loss <br><sup>sub</sup>' } },
    };
    await show(figure as never, { width: 300, height: 200 });
    assert.equal(single.length, 0, 'one bundle, not single-MIME messages');
    assert.equal(sent.length, 1);
    const data = sent[0].data;
    assert.deepEqual(data['application/vnd.plotly.v1+json'], figure);
    assert.equal(data['text/plain'], '[figure: Loss sub]');
    if ('image/png' in data) assert.match(String(data['image/png']), /^iVBORw0KGgo/); // base64 of the PNG signature
    assert.ok(JSON.stringify(data).length < 200_000, 'no plotly.js in the message');
    assert.ok(!('text/html' in data));
  } finally {
    delete (globalThis as Record<string, unknown>).__tslab__;
    await closeKernelExporter();
  }
});

test('showHtml() in a tslab kernel: the HTML and its text in one bundle', async () => {
  const sent: { data: Record<string, unknown> }[] = [];
  (globalThis as Record<string, unknown>).__tslab__ = {
    require: (id: string) => {
      if (id === 'tslab') return { display: {} };
      if (id === 'tslab/dist/jupyter')
        return { lastWriteDisplayData: (c: { data: Record<string, unknown> }) => sent.push(c) };
      throw new Error(`unexpected require ${id}`);
    },
  };
  try {
    const { showHtml } = await import('../src/report/notebook.js');
    showHtml('<table><tr><td>a</td><td>1.5</td></tr></table>');
    assert.deepEqual(
      sent.map((c) => c.data),
      [{ 'text/html': '<table><tr><td>a</td><td>1.5</td></tr></table>', 'text/plain': 'a 1.5' }],
    );
  } finally {
    delete (globalThis as Record<string, unknown>).__tslab__;
  }
});
