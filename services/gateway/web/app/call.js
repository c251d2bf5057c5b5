// One-to-one audio/video calls over WebRTC, set up through the protocol's
// `signal` frames (offer, answer, ICE candidates, hang-up): the media flows
// between the two browsers, never through the gateways. STUN/TURN servers
// come from the gateway's `/client-config.json` (`ice_servers`); with none,
// calls work between hosts that reach each other directly (a LAN).
//
// Every signal of a call carries `{call: "<id>", kind, ...}`; the first
// offer goes to every session of the callee, and from the answer on each
// side talks to the one session of the other (the `session` of the signal).

import { $ } from "/app/render.js";

/** How long an unanswered call rings before it is given up. */
const RING_MS = 45000;

/**
 * @typedef {Object} CallContext
 * @property {() => import("/chat.js").ChatClient | null} client
 * @property {() => RTCIceServer[]} iceServers
 * @property {(message: string) => void} showError
 */

export class Calls {
  /** @param {CallContext} context */
  constructor(context) {
    this.context = context;
    /**
     * The call in progress, if any.
     * @type {null | {id: string, peer: {id: string, name: string}, session: string | undefined,
     *   pc: RTCPeerConnection | null, local: MediaStream | null, pending: RTCIceCandidateInit[],
     *   incoming: boolean, offer?: RTCSessionDescriptionInit, timer?: number}}
     */
    this.call = null;
    $("call-accept").addEventListener("click", () => this.accept());
    $("call-decline").addEventListener("click", () => this.hangUp("declined"));
    $("call-hangup").addEventListener("click", () => this.hangUp("ended"));
  }

  /**
   * Calls `peer` (every session of that user; the first to answer takes it).
   * @param {{id: string, name: string}} peer
   */
  async start(peer) {
    if (this.call) return this.context.showError("Already in a call.");
    const id = crypto.randomUUID();
    this.call = { id, peer, session: undefined, pc: null, local: null, pending: [], incoming: false };
    this.show(`Calling ${peer.name}…`, "calling");
    try {
      const pc = await this.connect();
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const delivered = await this.send({ kind: "offer", sdp: offer.sdp });
      if (delivered === 0) return this.end(`${peer.name} is not online.`);
      this.ring();
    } catch (err) {
      this.end(`The call failed: ${/** @type {Error} */ (err).message}`);
    }
  }

  /**
   * A `signal` from another session.
   * @param {import("/chat.js").Signal} signal
   */
  async received({ from, session, data }) {
    if (!data || typeof data !== "object" || typeof data.call !== "string") return;
    const call = this.call;
    if (data.kind === "offer") {
      if (call) {
        // Busy: one call at a time.
        if (call.id !== data.call) this.context.client()?.signal(from.id, { call: data.call, kind: "hangup", reason: "busy" }, session).catch(() => {});
        return;
      }
      this.call = {
        id: data.call, peer: from, session, pc: null, local: null, pending: [], incoming: true,
        offer: { type: "offer", sdp: data.sdp },
      };
      this.show(`${from.name} is calling`, "ringing");
      this.ring();
      return;
    }
    if (!call || call.id !== data.call) return;
    if (data.kind === "answer" && !call.incoming && !call.session) {
      call.session = session;
      clearTimeout(call.timer);
      await call.pc?.setRemoteDescription({ type: "answer", sdp: data.sdp });
      this.show(`Connecting to ${call.peer.name}…`, "connecting");
      for (const candidate of call.pending.splice(0)) await this.addCandidate(candidate);
    } else if (data.kind === "candidate" && (!call.session || call.session === session)) {
      if (call.pc?.remoteDescription) await this.addCandidate(data.candidate);
      else if (call.pending.length < 100) call.pending.push(data.candidate);
    } else if (data.kind === "hangup" && (!call.session || call.session === session)) {
      this.end(data.reason === "busy" ? `${call.peer.name} is in another call.` : `${call.peer.name} ${data.reason === "declined" ? "declined" : "ended the call"}.`);
    }
  }

  /** Takes the ringing call. */
  async accept() {
    const call = this.call;
    if (!call?.incoming || call.pc || !call.offer) return;
    clearTimeout(call.timer);
    this.show(`Connecting to ${call.peer.name}…`, "connecting");
    try {
      const pc = await this.connect();
      await pc.setRemoteDescription(call.offer);
      for (const candidate of call.pending.splice(0)) await this.addCandidate(candidate);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      await this.send({ kind: "answer", sdp: answer.sdp });
    } catch (err) {
      this.end(`The call failed: ${/** @type {Error} */ (err).message}`);
    }
  }

  /**
   * Ends the call here and tells the other side.
   * @param {"declined" | "ended"} reason
   */
  hangUp(reason) {
    if (!this.call) return;
    this.send({ kind: "hangup", reason }).catch(() => {});
    this.end("");
  }

  /** @private */
  async connect() {
    const call = /** @type {NonNullable<Calls["call"]>} */ (this.call);
    const local = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    if (this.call !== call) {
      for (const track of local.getTracks()) track.stop();
      throw new Error("the call ended");
    }
    call.local = local;
    /** @type {HTMLVideoElement} */ ($("local-video")).srcObject = local;
    const pc = new RTCPeerConnection({ iceServers: this.context.iceServers() });
    call.pc = pc;
    for (const track of local.getTracks()) pc.addTrack(track, local);
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && this.call === call) this.send({ kind: "candidate", candidate: candidate.toJSON() }).catch(() => {});
    };
    pc.ontrack = ({ streams }) => {
      /** @type {HTMLVideoElement} */ ($("remote-video")).srcObject = streams[0] ?? null;
    };
    pc.onconnectionstatechange = () => {
      if (this.call !== call) return;
      const state = pc.connectionState;
      if (state === "connected") this.show(`In a call with ${call.peer.name}`, "connected");
      else if (state === "failed") this.end(`The call to ${call.peer.name} could not connect.`);
    };
    return pc;
  }

  /**
   * @param {RTCIceCandidateInit} candidate
   * @private
   */
  async addCandidate(candidate) {
    try {
      await this.call?.pc?.addIceCandidate(candidate);
    } catch {
      // A candidate the connection cannot use: the others may do.
    }
  }

  /**
   * Sends one signal of the call to the peer (its one session once known).
   * @param {Record<string, any>} data
   * @private
   */
  async send(data) {
    const call = this.call;
    const client = this.context.client();
    if (!call || !client) return 0;
    return client.signal(call.peer.id, { call: call.id, ...data }, call.session);
  }

  /** @private */
  ring() {
    const call = this.call;
    if (!call) return;
    call.timer = window.setTimeout(() => {
      if (this.call === call && call.pc?.connectionState !== "connected") this.hangUp("ended");
    }, RING_MS);
  }

  /**
   * Closes the call here, saying why (nothing for a plain hang-up).
   * @param {string} why
   */
  end(why) {
    const call = this.call;
    this.call = null;
    if (call) {
      clearTimeout(call.timer);
      call.pc?.close();
      for (const track of call.local?.getTracks() ?? []) track.stop();
    }
    /** @type {HTMLVideoElement} */ ($("local-video")).srcObject = null;
    /** @type {HTMLVideoElement} */ ($("remote-video")).srcObject = null;
    $("call-panel").hidden = true;
    $("call-panel").dataset.state = "idle";
    if (why) this.context.showError(why);
  }

  /**
   * @param {string} text
   * @param {"calling" | "ringing" | "connecting" | "connected"} state
   * @private
   */
  show(text, state) {
    $("call-panel").hidden = false;
    $("call-panel").dataset.state = state;
    $("call-state").textContent = text;
    $("call-accept").hidden = state !== "ringing";
    $("call-decline").hidden = state !== "ringing";
    $("call-hangup").hidden = state === "ringing";
  }
}
