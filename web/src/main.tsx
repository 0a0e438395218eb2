import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { LocationProvider } from './router.tsx';
import { takeEmbedLink } from './session.ts';
import './styles.css';

takeEmbedLink();

createRoot(document.getElementById('root')!).render(
  <LocationProvider>
    <App />
  </LocationProvider>,
);
