/* The floor of the read benchmark: libpcap reads every record and does
 * nothing else but count packets and sum captured lengths. */
#include <stdio.h>

#include <pcap/pcap.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CAPTURE\n", argv[0]);
    return 2;
  }
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t *pcap = pcap_open_offline(argv[1], errbuf);
  if (pcap == NULL) {
    fprintf(stderr, "pcap_floor: %s\n", errbuf);
    return 1;
  }
  unsigned long long packets = 0;
  unsigned long long bytes = 0;
  struct pcap_pkthdr *header = NULL;
  const unsigned char *data = NULL;
  int rc = 0;
  while ((rc = pcap_next_ex(pcap, &header, &data)) == 1) {
    ++packets;
    bytes += header->caplen;
  }
  int status = 0;
  if (rc == PCAP_ERROR) {
    fprintf(stderr, "pcap_floor: %s\n", pcap_geterr(pcap));
    status = 1;
  }
  pcap_close(pcap);
  printf("packets=%llu\nbytes=%llu\n", packets, bytes);
  return status;
}
