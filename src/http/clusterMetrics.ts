/**
 * /metrics under TALLY_WORKERS > 1. node:cluster hands each connection to one worker, so a scrape
 * answered from that worker's registry alone showed a different process's counters each time, and
 * Prometheus read every drop as a counter reset. The worker that takes the scrape asks the primary,
 * which gathers every worker's registry (prom-client's AggregatorRegistry, over the cluster's IPC)
 * and answers their sum.
 */
import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const ASK = 'tally:metrics';
const ANSWER = 'tally:metrics:answer';

interface Answer {
  type: typeof ANSWER;
  id: number;
  text?: string;
  error?: string;
}

/** Primary: answers a worker's scrape with the metrics of every worker. */
export function answerWorkersScrapes(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: { type?: string; id?: number }) => {
    if (message?.type !== ASK) return;
    const reply = (answer: Omit<Answer, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: ANSWER, id: message.id, ...answer });
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ text }),
      (error: Error) => reply({ error: error.message }),
    );
  });
}

const pending = new Map<number, (answer: Answer) => void>();
let asked = 0;

/**
 * The Prometheus text /metrics answers: this process's registry, or in a cluster worker every
 * worker's, summed by the primary (the worker's own registry is then one of those it reads).
 */
export function metricsOf(registry: Registry): () => Promise<string> {
  if (!cluster.isWorker) return () => registry.metrics();
  // Constructing one registers the worker's side of prom-client's IPC: it sends these registries.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  process.on('message', (message: Answer) => {
    if (message?.type === ANSWER) pending.get(message.id)?.(message);
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = ++asked;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('The primary process did not answer with the workers’ metrics within 10 s'));
      }, 10_000);
      pending.set(id, (answer) => {
        clearTimeout(timer);
        pending.delete(id);
        if (answer.text !== undefined) resolve(answer.text);
        else reject(new Error(answer.error ?? 'no metrics'));
      });
      process.send!({ type: ASK, id });
    });
}
