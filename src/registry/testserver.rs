//! Test-only HTTP/1.1 server on `127.0.0.1:0`: one thread per connection, `Connection: close`,
//! every request recorded, the peak number of requests in flight measured. Answers come from a
//! closure, so each test scripts its own registry.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) use crate::testhttp::Recorded;
use crate::testhttp::{read_request, respond};

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) delay: Duration,
}

impl Reply {
    pub(crate) fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub(crate) fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub(crate) fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

pub(crate) struct FakeServer {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
    peak: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    pub(crate) fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let peak = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let in_flight = Arc::new(AtomicUsize::new(0));
        {
            let (log, peak, stop) = (Arc::clone(&log), Arc::clone(&peak), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (log, peak, handler, in_flight) = (
                        Arc::clone(&log),
                        Arc::clone(&peak),
                        Arc::clone(&handler),
                        Arc::clone(&in_flight),
                    );
                    std::thread::spawn(move || {
                        serve(&stream, &log, &peak, &in_flight, &*handler);
                    });
                }
            });
        }
        Self {
            addr,
            log,
            peak,
            stop,
        }
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn host(&self) -> String {
        self.addr.to_string()
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// Requests with this method whose path starts with `prefix`.
    pub(crate) fn count(&self, method: &str, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path().starts_with(prefix))
            .count()
    }

    pub(crate) fn peak_in_flight(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

fn serve(
    stream: &TcpStream,
    log: &Mutex<Vec<Recorded>>,
    peak: &AtomicUsize,
    in_flight: &AtomicUsize,
    handler: &Handler,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(request) = read_request(stream) else {
        return;
    };
    log.lock().unwrap().push(request.clone());

    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    peak.fetch_max(now, Ordering::SeqCst);
    let reply = handler(&request);
    std::thread::sleep(reply.delay);
    in_flight.fetch_sub(1, Ordering::SeqCst);

    respond(
        stream,
        reply.status,
        &reply.headers,
        &reply.body,
        request.method == "HEAD",
    );
}
