import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { LocationProvider } from './router.tsx';
import './styles.css';

createRoot(document.getElementById('root')!).render(
  <LocationProvider>
    <App />
  </LocationProvider>,
);
