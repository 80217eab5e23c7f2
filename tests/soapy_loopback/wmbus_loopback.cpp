// wmbusloop: a file-backed SoapySDR device module for the wmbus-sdr tests.
//
// The transmit stream appends every CF32 sample it is given to the file named by the
// device argument `path`; the receive stream plays a CF32 file (`rx_path`, default
// `path`) back.  So Python code can go through the real SoapySDR API (device
// factory, settings, stream set-up, writeStream/readStream, flags, error codes) with
// no radio, and the test compares the file with what it wrote, sample for sample.
//
// Device arguments (all optional except `path` for a TX stream):
//   path=FILE        TX output, truncated when the TX stream is set up
//   rx_path=FILE     RX input (default: path); at its end readStream times out
//   tx_channels=N    number of TX channels (default 1; 0 makes a receive-only device)
//   rx_channels=N    number of RX channels (default 1)
//   mtu=N            stream MTU reported to the client (default 65536)
//   max_elems=N      accept at most N samples per writeStream (partial writes)
//   fail_at=N        once N samples were written, writeStream returns fail_code
//   fail_code=C      SoapySDR error code for fail_at (default -7, SOAPY_SDR_UNDERFLOW)
//   log=FILE         one line per call that changes state, for the tests to check:
//                      rate R / frequency F / gain G / antenna A / setup FORMAT /
//                      activate / write N FLAGS / deactivate / close
//
// Ranges it reports: frequency 1 MHz .. 6 GHz, sample rate 100 kS/s .. 20 MS/s,
// gain 0 .. 60 dB; TX antennas "TX" and "ALT", RX antenna "RX".

#include <SoapySDR/Device.hpp>
#include <SoapySDR/Formats.hpp>
#include <SoapySDR/Registry.hpp>

#include <complex>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

const char *kDriver = "wmbusloop";

std::string argOr(const SoapySDR::Kwargs &args, const std::string &key,
                  const std::string &fallback)
{
    const auto it = args.find(key);
    return it == args.end() ? fallback : it->second;
}

long long intArg(const SoapySDR::Kwargs &args, const std::string &key, long long fallback)
{
    const std::string text = argOr(args, key, "");
    if (text.empty()) return fallback;
    try {
        return std::stoll(text);
    } catch (const std::exception &) {
        throw std::runtime_error(std::string(kDriver) + ": " + key + "=" + text
                                 + " is not an integer");
    }
}

// One stream: its direction and the file behind it.
struct LoopStream
{
    int direction;
    std::FILE *file;
    bool active;
};

class LoopDevice : public SoapySDR::Device
{
public:
    explicit LoopDevice(const SoapySDR::Kwargs &args)
        : args_(args),
          txChannels_(intArg(args, "tx_channels", 1)),
          rxChannels_(intArg(args, "rx_channels", 1)),
          mtu_(intArg(args, "mtu", 65536)),
          maxElems_(intArg(args, "max_elems", 0)),
          failAt_(intArg(args, "fail_at", -1)),
          failCode_(static_cast<int>(intArg(args, "fail_code", SOAPY_SDR_UNDERFLOW))),
          written_(0)
    {
        if (txChannels_ < 0 || rxChannels_ < 0 || maxElems_ < 0 || mtu_ < 1)
            throw std::runtime_error("wmbusloop: channel and element counts must be >= 0");
        const std::string logPath = argOr(args, "log", "");
        if (!logPath.empty()) log_.open(logPath, std::ios::out | std::ios::trunc);
    }

    std::string getDriverKey(void) const override { return kDriver; }
    std::string getHardwareKey(void) const override { return "file"; }

    size_t getNumChannels(const int direction) const override
    {
        return static_cast<size_t>(direction == SOAPY_SDR_TX ? txChannels_ : rxChannels_);
    }

    bool getFullDuplex(const int, const size_t) const override { return true; }

    std::vector<std::string> getStreamFormats(const int, const size_t) const override
    {
        return {SOAPY_SDR_CF32};
    }

    std::string getNativeStreamFormat(const int, const size_t, double &fullScale) const override
    {
        fullScale = 1.0;
        return SOAPY_SDR_CF32;
    }

    // Antennas ----------------------------------------------------------------------
    std::vector<std::string> listAntennas(const int direction, const size_t) const override
    {
        if (direction == SOAPY_SDR_TX) return {"TX", "ALT"};
        return {"RX"};
    }

    void setAntenna(const int direction, const size_t channel, const std::string &name) override
    {
        checkChannel(direction, channel);
        const auto names = listAntennas(direction, channel);
        bool known = false;
        for (const auto &n : names) known = known || n == name;
        if (!known) throw std::runtime_error("wmbusloop: no antenna named " + name);
        antenna_[direction == SOAPY_SDR_TX] = name;
        note("antenna " + name);
    }

    std::string getAntenna(const int direction, const size_t) const override
    {
        return antenna_[direction == SOAPY_SDR_TX];
    }

    // Gain, frequency, sample rate ----------------------------------------------------
    std::vector<std::string> listGains(const int, const size_t) const override { return {"PGA"}; }

    void setGain(const int direction, const size_t channel, const double value) override
    {
        checkChannel(direction, channel);
        gain_ = value;
        note("gain " + number(value));
    }

    void setGain(const int direction, const size_t channel, const std::string &,
                 const double value) override
    {
        setGain(direction, channel, value);
    }

    double getGain(const int, const size_t) const override { return gain_; }
    double getGain(const int, const size_t, const std::string &) const override { return gain_; }

    SoapySDR::Range getGainRange(const int, const size_t) const override
    {
        return SoapySDR::Range(0.0, 60.0);
    }

    SoapySDR::Range getGainRange(const int, const size_t, const std::string &) const override
    {
        return SoapySDR::Range(0.0, 60.0);
    }

    std::vector<std::string> listFrequencies(const int, const size_t) const override
    {
        return {"RF"};
    }

    void setFrequency(const int direction, const size_t channel, const double frequency,
                      const SoapySDR::Kwargs &) override
    {
        checkChannel(direction, channel);
        frequency_ = frequency;
        note("frequency " + number(frequency));
    }

    void setFrequency(const int direction, const size_t channel, const std::string &,
                      const double frequency, const SoapySDR::Kwargs &args) override
    {
        setFrequency(direction, channel, frequency, args);
    }

    double getFrequency(const int, const size_t) const override { return frequency_; }
    double getFrequency(const int, const size_t, const std::string &) const override
    {
        return frequency_;
    }

    SoapySDR::RangeList getFrequencyRange(const int, const size_t) const override
    {
        return {SoapySDR::Range(1e6, 6e9)};
    }

    SoapySDR::RangeList getFrequencyRange(const int, const size_t, const std::string &) const override
    {
        return {SoapySDR::Range(1e6, 6e9)};
    }

    void setSampleRate(const int direction, const size_t channel, const double rate) override
    {
        checkChannel(direction, channel);
        if (rate < 1e5 || rate > 2e7)
            throw std::runtime_error("wmbusloop: sample rate out of range");
        rate_ = rate;
        note("rate " + number(rate));
    }

    double getSampleRate(const int, const size_t) const override { return rate_; }

    SoapySDR::RangeList getSampleRateRange(const int, const size_t) const override
    {
        return {SoapySDR::Range(1e5, 2e7)};
    }

    // Streams -------------------------------------------------------------------------
    SoapySDR::Stream *setupStream(const int direction, const std::string &format,
                                  const std::vector<size_t> &channels,
                                  const SoapySDR::Kwargs &) override
    {
        if (format != SOAPY_SDR_CF32)
            throw std::runtime_error("wmbusloop: only CF32 streams, not " + format);
        for (const size_t ch : channels) checkChannel(direction, ch);
        if (getNumChannels(direction) == 0)
            throw std::runtime_error("wmbusloop: no channels in this direction");
        const bool tx = direction == SOAPY_SDR_TX;
        const std::string path = tx ? argOr(args_, "path", "")
                                    : argOr(args_, "rx_path", argOr(args_, "path", ""));
        if (path.empty()) throw std::runtime_error("wmbusloop: give path=FILE");
        std::FILE *file = std::fopen(path.c_str(), tx ? "wb" : "rb");
        if (file == nullptr) throw std::runtime_error("wmbusloop: cannot open " + path);
        note("setup " + format);
        return reinterpret_cast<SoapySDR::Stream *>(new LoopStream{direction, file, false});
    }

    void closeStream(SoapySDR::Stream *handle) override
    {
        LoopStream *stream = reinterpret_cast<LoopStream *>(handle);
        std::fclose(stream->file);
        delete stream;
        note("close");
    }

    size_t getStreamMTU(SoapySDR::Stream *) const override
    {
        return static_cast<size_t>(mtu_);
    }

    int activateStream(SoapySDR::Stream *handle, const int, const long long, const size_t) override
    {
        reinterpret_cast<LoopStream *>(handle)->active = true;
        note("activate");
        return 0;
    }

    int deactivateStream(SoapySDR::Stream *handle, const int, const long long) override
    {
        LoopStream *stream = reinterpret_cast<LoopStream *>(handle);
        stream->active = false;
        std::fflush(stream->file);
        note("deactivate");
        return 0;
    }

    int writeStream(SoapySDR::Stream *handle, const void *const *buffs, const size_t numElems,
                    int &flags, const long long, const long) override
    {
        LoopStream *stream = reinterpret_cast<LoopStream *>(handle);
        if (stream->direction != SOAPY_SDR_TX || !stream->active) return SOAPY_SDR_STREAM_ERROR;
        if (failAt_ >= 0 && written_ >= failAt_) return failCode_;
        size_t count = numElems;
        if (maxElems_ > 0 && count > static_cast<size_t>(maxElems_))
            count = static_cast<size_t>(maxElems_);
        if (failAt_ >= 0 && written_ + static_cast<long long>(count) > failAt_)
            count = static_cast<size_t>(failAt_ - written_);
        // A partial write must not carry the end of the burst: the rest follows.
        const int outFlags = count == numElems ? flags : (flags & ~SOAPY_SDR_END_BURST);
        const size_t done = std::fwrite(buffs[0], sizeof(std::complex<float>), count, stream->file);
        if (done != count) return SOAPY_SDR_STREAM_ERROR;
        written_ += static_cast<long long>(done);
        note("write " + std::to_string(done) + " " + std::to_string(outFlags));
        flags = outFlags;
        return static_cast<int>(done);
    }

    int readStream(SoapySDR::Stream *handle, void *const *buffs, const size_t numElems,
                   int &flags, long long &timeNs, const long) override
    {
        LoopStream *stream = reinterpret_cast<LoopStream *>(handle);
        if (stream->direction != SOAPY_SDR_RX || !stream->active) return SOAPY_SDR_STREAM_ERROR;
        const size_t got = std::fread(buffs[0], sizeof(std::complex<float>), numElems, stream->file);
        flags = 0;
        timeNs = 0;
        // At the end of the file there is no more signal: what a radio's timeout reports.
        return got == 0 ? SOAPY_SDR_TIMEOUT : static_cast<int>(got);
    }

private:
    void checkChannel(const int direction, const size_t channel) const
    {
        if (channel >= getNumChannels(direction))
            throw std::runtime_error("wmbusloop: no channel " + std::to_string(channel));
    }

    static std::string number(const double value)
    {
        char text[64];
        std::snprintf(text, sizeof(text), "%.17g", value);
        return text;
    }

    void note(const std::string &line)
    {
        if (log_.is_open()) log_ << line << std::endl;
    }

    SoapySDR::Kwargs args_;
    long long txChannels_;
    long long rxChannels_;
    long long mtu_;
    long long maxElems_;
    long long failAt_;
    int failCode_;
    long long written_;
    double gain_ = 0.0;
    double frequency_ = 0.0;
    double rate_ = 1e6;
    std::string antenna_[2] = {"RX", "TX"};
    std::ofstream log_;
};

SoapySDR::KwargsList findLoop(const SoapySDR::Kwargs &args)
{
    const auto driver = args.find("driver");
    if (driver != args.end() && driver->second != kDriver) return {};
    SoapySDR::Kwargs result;
    result["driver"] = kDriver;
    result["label"] = "wM-Bus file loopback";
    return {result};
}

SoapySDR::Device *makeLoop(const SoapySDR::Kwargs &args) { return new LoopDevice(args); }

SoapySDR::Registry registerLoop(kDriver, &findLoop, &makeLoop, SOAPY_SDR_ABI_VERSION);

}  // namespace
