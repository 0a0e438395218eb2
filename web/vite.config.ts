/** Builds the web app into dist/web: the SPA (index.html) and the host-side usage bar script (usage-bar.js). */
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/',
  plugins: [react()],
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    target: 'es2022',
    rollupOptions: {
      input: { app: here('index.html'), 'usage-bar': here('src/usageBar/usageBarElement.ts') },
      output: {
        // The usage bar keeps a stable address that host apps put in a <script> tag.
        entryFileNames: (chunk) => (chunk.name === 'usage-bar' ? 'usage-bar.js' : 'assets/[name]-[hash].js'),
      },
    },
  },
});
